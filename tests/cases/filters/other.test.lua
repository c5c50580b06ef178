test("fails", function(t) t:fail("on purpose") end)
