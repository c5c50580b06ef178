test("kills its own runner", function(t)
  os.execute("kill -KILL $PPID")
  -- the signal lands asynchronously: wait for it
  wait_until(function() return false end, { timeout = "10s" })
end)
test("poisoned", function(t) end)
