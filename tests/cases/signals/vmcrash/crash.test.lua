-- The runner dies (SIGKILL) while its VM runs: no vm_shutdown can come from
-- it, so the scheduler has to emit one.
local v = provium:vm("doomed", "linux", { memory = "128M" })
v:boot()

test("kills its own runner with a VM up", function(t)
  t:assert_eq(v:run("echo up").stdout, "up\n")
  os.execute("kill -KILL $PPID")
  -- the signal lands asynchronously: wait for it
  pcall(wait_until, function() return false end, { timeout = "60s", interval = "100ms" })
end)

test("never runs", function(t) end)
