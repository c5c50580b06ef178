-- A VM booted at file scope, then blocked mid-run until provium is signalled
-- (see ../block/block.test.lua for the FIFO handshake).
local v = provium:vm("sig", "linux", { memory = "128M" })
v:boot()

test("blocks with a VM up", { timeout = "250s" }, function(t)
  t:assert_eq(v:run("echo up").stdout, "up\n")
  local f = assert(io.open(assert(os.getenv("PV_SIGNAL_FIFO"), "PV_SIGNAL_FIFO is not set"), "w"))
  f:write("ready\n")
  f:close()
  pcall(wait_until, function() return false end, { timeout = "240s", interval = "1s" })
end)

test("after", function(t) end)
