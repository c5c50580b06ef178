-- Runs long enough to be interrupted.
test("quick", function(t) end)
test("waits ten seconds", function(t)
  pcall(wait_until, function() return false end, { timeout = "10s", interval = "50ms" })
end)
test("after the wait", function(t) end)
