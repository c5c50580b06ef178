-- VM tests on the built-in linux profile: console:write types bytes into the
-- guest's serial console (ttyS0). The agent (PID 1) keeps /dev/console, which
-- is ttyS0, open, so the guest kernel takes what arrives even with no reader:
-- the tty echoes it (into the console log) and keeps it for the next reader.
local vm = provium:vm("guest", "linux", { memory = "256M" })
vm:boot()

-- A reader of ttyS0 in the guest: opens it, sets its modes, says so, then
-- copies what arrives to path.
local function reader(t, modes, path)
  local p = vm:run_async(("exec 3</dev/ttyS0 && stty %s <&3 && echo ready && exec cat <&3 > %s"):format(modes, path))
  t:assert_eq(p:stdout_stream():read_until("ready\n"), "ready\n")
  return p
end

test("bytes reach the guest's ttyS0 unchanged in raw mode, beyond the FIFO's 64 KiB", function(t)
  local p = reader(t, "raw -echo", "/tmp/raw")
  local bytes = {}
  for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
  local payload = table.concat(bytes) .. string.rep("0123456789abcdef", 16384) -- 256 bytes + 256 KiB
  vm:console():write(payload)
  wait_until(function() return vm:stat("/tmp/raw").size >= #payload end,
    { timeout = "60s", desc = "the guest's copy of what was written" })
  local got = vm:read_file("/tmp/raw")
  t:assert_eq(#got, #payload)
  t:assert(got == payload, "every byte value arrives, in order")
  p:kill()
  p:wait()
  vm:run("stty -F /dev/ttyS0 sane"):assert_ok()
end)

test("a cooked read gets a line, and the tty's echo is in the console log", function(t)
  local c = vm:console()
  local log = c:read({ start = "end" })
  local p = vm:run_async("read -r line < /dev/ttyS0; echo \"got:$line\"")
  -- ^U kills what a partial line may have left; icrnl turns \r into \n
  c:write("\21hello from the host\r")
  t:assert_eq(p:wait("20s").stdout, "got:hello from the host\n")
  t:assert_eq(log:expect("hello from the host", { plain = true }), "hello from the host")
end)

test("console:write errors: data that is not a string, bad options, a paused VM", function(t)
  local c = vm:console()
  c:write("") -- nothing to type: fine
  t:assert_contains(t:assert_raises(function() c:write(42) end), "console:write: data must be a string (got number)")
  t:assert_contains(t:assert_raises(function() c:write() end), "data must be a string (got no value)")
  t:assert_contains(t:assert_raises(function() c:write("x", { timout = "1s" }) end), 'unknown key "timout"')
  vm:pause()
  local e = t:assert_raises(function() c:write("x") end)
  vm:resume()
  t:assert_contains(e, "VM 'guest' is paused (vm:pause()): console:write needs it running")
end)

test("a restored VM's console takes input too", function(t)
  local snap = vm:snapshot()
  vm:restore(snap)
  local p = vm:run_async("read -r line < /dev/ttyS0; echo \"got:$line\"")
  vm:console():write("\21after the restore\r")
  t:assert_eq(p:wait("20s").stdout, "got:after the restore\n")
  t:assert_contains(vm:console():read_log(), "--- provium: restored from a snapshot ---")
  snap:delete()
end)

-- A static x86-64 program that turns the UART's interrupts off (IER, port
-- 0x3f9, = 0), after which the guest kernel reads nothing more from ttyS0:
--   ioperm(0x3f8, 8, 1); outb(0, 0x3f9); exit(-ioperm's result)
-- (mov $173,%eax; mov $0x3f8,%edi; mov $8,%esi; mov $1,%edx; syscall;
-- mov %eax,%edi; neg %edi; test %eax,%eax; jnz 1f; mov $0x3f9,%dx;
-- xor %eax,%eax; out %al,%dx; 1: mov $60,%eax; syscall), linked with ld -N,
-- its section headers cut off.
local IER_OFF = (
  "7f454c4602010100000000000000000002003e0001000000780040000000000040000000" ..
  "000000000000000000000000000000004000380001000000000000000100000007000000" ..
  "7800000000000000780040000000000078004000000000002c000000000000002c000000" ..
  "000000000100000000000000b8ad000000bff8030000be08000000ba010000000f0589c7" ..
  "f7df85c0750766baf90331c0eeb83c0000000f05"):gsub("..", function(h) return string.char(tonumber(h, 16)) end)

local qemu_pid = require("lib.qemu").pid

test("a guest that does not read its console: the write gives up, or ends when QEMU dies", function(t)
  local deaf = provium:vm("deaf", "linux", { memory = "128M" })
  deaf:boot()
  deaf:write_file("/tmp/ier-off", IER_OFF, { mode = "0755" })
  deaf:run("/tmp/ier-off"):assert_ok()
  local c = deaf:console()
  local e = t:assert_raises(function() c:write(string.rep("y", 200000), { timeout = "1s" }) end)
  t:assert_contains(e, "console:write: the guest is not reading its console (VM 'deaf')")
  t:assert_contains(e, "then none for 1.0 s")
  -- the FIFO's 64 KiB went in, and no more
  local went = tonumber(e:match("(%d+) of 200000 bytes went in"))
  t:assert(went and went >= 65536 and went < 200000, "bytes taken: " .. tostring(went))
  t:assert_eq(deaf:run("echo alive").stdout, "alive\n", "the VM runs on")
  -- a QEMU that exits during a stalled write ends it at once, not at its timeout
  os.execute("(sleep 1; kill -9 " .. qemu_pid(deaf) .. ") &")
  e = t:assert_raises(function() c:write(string.rep("y", 200000), { timeout = "60s" }) end)
  t:assert_contains(e, "VM 'deaf' died during console:write: QEMU exited after")
  t:assert_eq(deaf.state, "dead")
  t:assert_contains(t:assert_raises(function() c:write("x") end), "VM 'deaf' is dead")
  deaf:shutdown()
  t:assert_contains(t:assert_raises(function() c:write("x") end), "VM 'deaf' was shut down")
end)
