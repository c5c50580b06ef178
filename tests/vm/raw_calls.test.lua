-- VM tests on the built-in linux profile: vm:syscall, vm:syscall_async,
-- vm:ioctl and vm:read_mem (x86_64 syscall numbers).
local SYS = { read = 0, write = 1, close = 3, mmap = 9, pause = 34, nanosleep = 35, getpid = 39, uname = 63,
  getcwd = 79, getuid = 102 }
local vm = provium:vm("guest", "linux", { memory = "256M" })
vm:boot()

local function ns(ms) return string.pack("<i8i8", ms // 1000, (ms % 1000) * 1000000) end

test("a syscall runs in the agent (PID 1) and returns ret and errno", function(t)
  local r = vm:syscall(SYS.getpid)
  t:assert_eq(r.ret, 1)
  t:assert_eq(r.result, 1)
  t:assert_eq(r.errno, 0)
  t:assert_eq(#r.out_bufs, 0)
  local bad = vm:syscall(SYS.close, 123456)
  t:assert_eq(bad.ret, -1)
  t:assert_eq(bad.errno, 9) -- EBADF: a result, not an error
  t:assert_eq(vm:syscall(4000).errno, 38) -- ENOSYS
end)

test("buffers are copied in, their addresses patched into the arguments, and copied out", function(t)
  local r = vm:syscall(SYS.getcwd, { args = { 0, 256 }, bufs = { 256 }, ptrs = { 0 } })
  t:assert(r.ret > 0)
  t:assert_eq(#r.out_bufs[1], 256)
  t:assert_eq(r.out_bufs[1]:sub(1, r.ret - 1), "/")
  local u = vm:syscall(SYS.uname, { bufs = { string.rep("\0", 390) }, ptrs = { 0 } })
  t:assert_eq(u.ret, 0)
  t:assert_eq(u.out_bufs[1]:sub(1, 5), "Linux")
  -- a buffer in the second argument: write(2, buf, 3) to the agent's stderr (the console)
  local w = vm:syscall(SYS.write, { args = { 2, 0, 3 }, bufs = { "ab\n" }, ptrs = { 1 } })
  t:assert_eq(w.ret, 3)
end)

test("a bad buffer index, a missing ptr and a bad argument are errors that say so", function(t)
  local e = t:assert_raises(function() vm:syscall(SYS.getcwd, { bufs = { 16 }, ptrs = { 6 } }) end)
  t:assert_contains(tostring(e), "ptrs[1] = 6 is no argument index")
  e = t:assert_raises(function() vm:syscall(SYS.getcwd, { bufs = { 16, 16 }, ptrs = { 0 } }) end)
  t:assert_contains(tostring(e), "2 bufs but 1 ptrs")
  e = t:assert_raises(function() vm:syscall(SYS.getcwd, { bufs = { 16, 16 }, ptrs = { 0, 0 } }) end)
  t:assert_contains(tostring(e), "argument 0 already gets a buffer's address")
  e = t:assert_raises(function() vm:syscall("getpid") end)
  t:assert_contains(tostring(e), "the syscall number must be an integer")
  e = t:assert_raises(function() vm:syscall(SYS.getpid, 1, 2, 3, 4, 5, 6, 7) end)
  t:assert_contains(tostring(e), "at most 6 arguments")
  e = t:assert_raises(function() vm:syscall(SYS.getpid, { bufs = { {} }, ptrs = { 0 } }) end)
  t:assert_contains(tostring(e), "bufs[1] must be a string")
end)

test("a syscall that blocks past its timeout is interrupted and raises", function(t)
  local e = t:assert_raises(function() vm:syscall(SYS.pause, { timeout = "300ms" }) end)
  t:assert_contains(tostring(e), "still blocked at its timeout")
  t:assert_eq(vm:run("echo alive").stdout, "alive\n") -- the agent serves on
end)

test("syscall_async runs on a thread of its own while the agent serves other ops", function(t)
  local c = vm:syscall_async(SYS.nanosleep, { args = { 0, 0 }, bufs = { ns(400) }, ptrs = { 0 } })
  t:assert_eq(vm:run("echo meanwhile").stdout, "meanwhile\n")
  local r = c:await("20s")
  t:assert_eq(r.ret, 0)
  local e = t:assert_raises(function() c:await() end)
  t:assert_contains(tostring(e), "awaited or cancelled already")
end)

test("await with a timeout raises while the call runs on; cancel interrupts it", function(t)
  local c = vm:syscall_async(SYS.pause)
  local e = t:assert_raises(function() c:await("200ms") end)
  t:assert_contains(tostring(e), "still running")
  c:cancel()
  e = t:assert_raises(function() c:await() end)
  t:assert_contains(tostring(e), "awaited or cancelled already")
  local e2 = t:assert_raises(function() vm:syscall_async(SYS.pause, { timeout = "1s" }) end)
  t:assert_contains(tostring(e2), "takes no timeout")
end)

test("a call never awaited is cancelled at the end of its test", function(t)
  vm:syscall_async(SYS.pause)
end)

test("ioctl on a path, a File and a buffer; a failing one returns its errno", function(t)
  local r = vm:ioctl("/dev/null", 0x5401, string.rep("\0", 60)) -- TCGETS
  t:assert_eq(r.ret, -1)
  t:assert_eq(r.errno, 25) -- ENOTTY
  vm:write_file("/tmp/ioctl", "hello")
  local f = vm:open_file("/tmp/ioctl", { read = true })
  local n = vm:ioctl(f, 0x541B, string.rep("\0", 4)) -- FIONREAD: bytes left to read
  t:assert_eq(n.ret, 0)
  t:assert_eq(string.unpack("<i4", n.out_data), 5)
  f:read(2)
  t:assert_eq(string.unpack("<i4", vm:ioctl(f, 0x541B, string.rep("\0", 4)).out_data), 3)
  f:close()
  local e = t:assert_raises(function() vm:ioctl(f, 0x541B, "\0\0\0\0") end)
  t:assert_contains(tostring(e), "was closed")
  e = t:assert_raises(function() vm:ioctl("/nope", 0x5401) end)
  t:assert_contains(tostring(e), "No such file or directory")
  e = t:assert_raises(function() vm:ioctl({}, 1) end)
  t:assert_contains(tostring(e), "needs a guest path")
end)

test("read_mem reads the agent's memory; an unmapped address is nil and EFAULT", function(t)
  local m = vm:syscall(SYS.mmap, 0, 4096, 3, 0x22, -1, 0) -- PROT_READ|WRITE, MAP_PRIVATE|ANONYMOUS
  t:assert(m.ret > 0)
  t:assert_eq(vm:read_mem(m.ret, 8), string.rep("\0", 8))
  t:assert_eq(vm:syscall(SYS.getcwd, m.ret, 64).ret, 2) -- "/" and its NUL, into that page
  t:assert_eq(vm:read_mem(m.ret, 2), "/\0")
  local data, errno, msg = vm:read_mem(16, 8)
  t:assert_eq(data, nil)
  t:assert_eq(errno, 14)
  t:assert_contains(msg, "Bad address")
  local e = t:assert_raises(function() vm:read_mem(m.ret, 2 * 1024 * 1024) end)
  t:assert_contains(tostring(e), "at most 1048576 at once")
end)
