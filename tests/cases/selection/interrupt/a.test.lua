-- An interrupted run still records what completed (tests/suite/selection.test.lua).
test("fails", function(t) t:fail("on purpose") end)
test("passes", function(t) end)
