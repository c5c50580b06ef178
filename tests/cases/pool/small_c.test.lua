provium:claim{ memory = "200M", cpus = 1 }
test("holds the pool for a moment", function(t)
  local ok = pcall(wait_until, function() return false end, { timeout = "300ms", interval = "50ms" })
end)
