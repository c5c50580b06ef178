test("assert_eq shows both values", { spec = "api/assert" }, function(t)
  t:assert_eq("bound", "expired", "lease state")
end)

test("plain failure", function(t)
  t:fail("went wrong")
end)

test("runtime error", function(t)
  local x = nil
  return x.field
end)

test("skipped inline", function(t)
  t:skip("not on this host")
  error("never reached")
end)

test("skipped by meta", { skip = "needs hardware" }, function(t)
  error("never reached")
end)

test("slow one", { slow = true }, function(t) end)

test("after failures, still runs", function(t) t:assert(true) end)
