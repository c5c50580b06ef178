-- What a guest and its QEMU get from the host: only their own fds, a guest
-- clock and random state that are fresh after every restore, and an agent
-- that keeps answering (and enforcing timeouts) under a fork bomb.
-- 256M: in a 128M guest a fork bomb hits threads-max before it starves anyone
provium:claim{ memory = "712M", cpus = 2 }

-- a file the test holds open while the VMs boot (Lua's io.open has no
-- O_CLOEXEC): QEMU must not inherit it
local held_path = os.tmpname()
local held = assert(io.open(held_path, "w"))

local v = provium:vm("g", "linux", { memory = "256M" })
local w = provium:vm("h", "linux", { memory = "256M" })
provium:boot()

local qemu_pid = require("lib.qemu").pid

-- fd number -> readlink target, of a process
local function fds(pid)
  local p = io.popen("cd /proc/" .. pid .. "/fd && for f in *; do echo \"$f $(readlink $f)\"; done")
  local r = {}
  for line in p:lines() do
    local n, target = line:match("^(%d+) (.*)$")
    if n then r[tonumber(n)] = target end
  end
  p:close()
  return r
end

local function my_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = tonumber(f:read("a"):match("^%d+"))
  f:close()
  return pid
end

-- the host's wall clock in seconds, sub-second (Lua's os.time is whole seconds)
local function host_now()
  local p = io.popen("date +%s.%N")
  local s = tonumber(p:read("l"))
  p:close()
  return s
end

-- the guest's wall clock (busybox date has no %N; adjtimex shows microseconds)
local function guest_now(vm)
  local out = vm:run("adjtimex"):assert_ok().stdout
  return tonumber(out:match("tv_sec:%s*(%d+)")) + tonumber(out:match("tv_usec:%s*(%d+)")) / 1e6
end

-- how far the guest's clock is from the host's: 0 if it lies within the host
-- times read just before and after it
local function skew(vm)
  local h0 = host_now()
  local g = guest_now(vm)
  local h1 = host_now()
  return g < h0 and h0 - g or (g > h1 and g - h1 or 0), h1 - h0
end

test("QEMU inherits none of the runner's fds", function(t)
  local mine = {}
  for n, target in pairs(fds(my_pid())) do
    if n > 2 then mine[target] = n end
  end
  for _, vm in ipairs({ v, w }) do
    for n, target in pairs(fds(qemu_pid(vm))) do
      t:assert(target ~= held_path, "QEMU of " .. vm.name .. " holds the test's file " .. held_path .. " as fd " .. n)
      -- the console's input FIFO is no inherited fd: QEMU opens it by name
      -- itself, while the runner holds its write end
      t:assert(n <= 2 or not mine[target] or target:match("/console%.in$"),
        "QEMU of " .. vm.name .. " fd " .. n .. " is the runner's fd " .. tostring(mine[target]) .. " (" .. target .. ")")
    end
  end
  held:close()
  os.remove(held_path)
end)

test("the OOM killer picks a QEMU before its runner, and a runner before the scheduler", function(t)
  local function adj(pid)
    local f = assert(io.open("/proc/" .. pid .. "/oom_score_adj"))
    local n = tonumber(f:read("l"))
    f:close()
    return n
  end
  t:assert_eq(adj(my_pid()), 500, "the runner's oom_score_adj")
  local f = assert(io.open("/proc/self/stat"))
  local scheduler = tonumber(f:read("a"):match("%) %a (%d+)")) -- field 4, the parent
  f:close()
  t:assert(adj(scheduler) < 500, "the scheduler's oom_score_adj is below its runners'")
  for _, vm in ipairs({ v, w }) do
    t:assert_eq(adj(qemu_pid(vm)), 800, "QEMU of " .. vm.name)
  end
end)

test("a restored guest's clock is the host's, not the snapshot's", function(t)
  local snap = v:snapshot()
  -- let the host clock run ahead of the saved guest
  os.execute("sleep 3")
  v:restore(snap)
  local s, window = skew(v)
  t:log(string.format("guest clock skew after restore: %.3f s (read within a %.3f s window)", s, window))
  t:assert(s <= 0.5, string.format("the restored guest's clock is %.3f s off the host's", s))
  snap:delete()
end)

test("guests resumed from one snapshot do not share random state", function(t)
  local snap = v:snapshot()
  v:restore(snap)
  w:restore(snap)
  local cmd = "head -c 16 /dev/urandom | od -An -tx1; cat /proc/sys/kernel/random/uuid"
  local a, b = v:run(cmd):assert_ok().stdout, w:run(cmd):assert_ok().stdout
  t:assert_neq(a, b, "/dev/urandom bytes and a random uuid right after resume")
  snap:delete()
end)

test("the agent outranks commands; commands run as ordinary tasks", function(t)
  -- /proc/PID/stat after the ')' : field 19 nice, 41 policy (0 SCHED_OTHER, 2 SCHED_RR)
  local function sched(stat)
    local f = {}
    for x in stat:match("%) (.*)$"):gmatch("%S+") do f[#f + 1] = x end
    return tonumber(f[17]), tonumber(f[39])
  end
  local nice1, policy1 = sched(v:read_file("/proc/1/stat"))
  t:assert_eq(policy1, 2, "the agent (PID 1) runs SCHED_RR")
  local nice, policy = sched(v:run("cat /proc/self/stat").stdout)
  t:assert_eq(policy, 0, "a command runs SCHED_OTHER")
  t:assert_eq(nice, 0, "a command runs at nice 0")
  t:assert(nice1 <= 0)
end)

test("a guest that never answers: vm:run returns 2 s after its timeout, the VM lives on", function(t)
  local pid = qemu_pid(w)
  os.execute("kill -STOP " .. pid) -- the whole VM freezes: nothing in it can answer
  local t0 = host_now()
  local ok, r = pcall(w.run, w, "echo late", { timeout = "1s" })
  local took = host_now() - t0
  os.execute("kill -CONT " .. pid)
  t:assert(ok, tostring(r))
  t:log(string.format("vm:run with timeout 1s on a stopped QEMU returned after %.2f s", took))
  t:assert(r.timed_out, "timed out")
  t:assert_eq(r.status, "timed_out")
  t:assert_contains(r.host_timeout, "the guest did not answer within 2s of the command's 1s timeout")
  t:assert(took < 10, string.format("returned after %.1f s", took))
  local e = t:assert_raises(function() r:assert_ok() end)
  t:assert_contains(e, "timed out: the guest did not answer")
  -- the late answer to "echo late" is not taken for this one
  t:assert_eq(w:run("echo alive"):assert_ok().stdout, "alive\n")
  t:assert_eq(w.state, "running")
end)

test("a fork bomb cannot hold vm:run past its timeout", function(t)
  local t0 = host_now()
  local r = v:run("bomb() { bomb | bomb & }; bomb; sleep 60", { timeout = "3s" })
  local took = host_now() - t0
  t:log(string.format("vm:run with timeout 3s under a fork bomb returned after %.2f s (%s, answered by %s)", took,
    r.status, r.host_timeout and "the host's deadline" or "the guest"))
  t:assert(r.timed_out, "the result says timed out: " .. r.status)
  -- the host gives up 2 s after the guest should have answered
  t:assert(took < 10, string.format("returned after %.1f s", took))
  -- the guest recovers: the bomb's process group was killed
  wait_until(function()
    return tonumber(v:run("ls -d /proc/[0-9]* | wc -l", { timeout = "60s" }).stdout) < 100
  end, { timeout = "120s", desc = "the fork bomb's processes to be gone" })
  t:assert_eq(v:run("echo alive"):assert_ok().stdout, "alive\n")
end)

test("the loopback interface is up, as on any booted system", function(t)
  -- a daemon under test listens on 127.0.0.1: that needs lo up before the first op
  v:run("ping -c1 -W5 127.0.0.1"):assert_ok()
end)
