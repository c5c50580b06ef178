-- Takes a second before its first result, so a live consumer can attach.
test("waits a second", { spec = "live" }, function(t)
  pcall(wait_until, function() return false end, { timeout = "1s", interval = "100ms" })
end)
test("then passes", { spec = "live" }, function(t) end)
