-- Both files hold a VM in a 700M pool, then need the same fixture: one
-- builds and needs pool memory the other holds, the other waits on its lock.
local dir = os.getenv("SYNC_DIR")
local v = provium:vm("mine", "linux", { memory = "128M" })
v:boot()
io.open(dir .. "/a", "w"):close()
wait_until(function() return io.open(dir .. "/b") end, { timeout = "120s", interval = "100ms" })
local f = provium.vm_fixture("idle")
test("uses the fixture", function(t)
  t:assert_eq(f:run("echo ok").stdout, "ok\n")
end)
