provium.timeout = "120s"

test("pcall loop", { timeout = "1s" }, function(t)
  while true do pcall(function() while true do end end) end
end)

test("xpcall loop sees the message", { timeout = "1s" }, function(t)
  while true do
    xpcall(function() while true do end end, function(e) print("handler got: " .. tostring(e)) end)
  end
end)

test("coroutine loop", { timeout = "1s" }, function(t)
  while true do coroutine.resume(coroutine.create(function() while true do end end)) end
end)

test("assert_raises loop", { timeout = "1s" }, function(t)
  while true do t:assert_raises(function() while true do end end) end
end)

test("wait_until loop", { timeout = "1s" }, function(t)
  while true do pcall(wait_until, function() return false end, { timeout = "30s" }) end
end)

test("next test still runs", function(t) t:assert(true) end)

test("an assertion caught by pcall reads as its message", function(t)
  local ok, e = pcall(t.assert_eq, t, 1, 2)
  t:assert(not ok)
  t:assert_contains(tostring(e), "assert_eq failed: 1 ~= 2")
  -- and a coroutine yielding through pcall still works
  local co = coroutine.wrap(function() local ok2, v = pcall(coroutine.yield, 7); return v end)
  t:assert_eq(co(), 7)
  t:assert_eq(co(8), 8)
end)
