-- One test fails until PV_FIXED is set (tests/suite/selection.test.lua).
test("passes", function(t) end)
test("fails until fixed", { owner = "net" }, function(t)
  t:assert(os.getenv("PV_FIXED"), "not fixed yet")
end)
test("also passes", function(t) end)
