-- VM failure paths, seen from outside: events and messages of a nested run.
local pv = require("lib.pv")

test("vm_spawned / vm_shutdown, and the console excerpt of a failure", function(t)
  local r = pv.run({ pv.cases .. "/vm/failing.test.lua" })
  t:assert_eq(r.code, 1, r.stderr)
  local sp = pv.of(r.events, "vm_spawned")
  t:assert_eq(#sp, 1)
  t:assert_eq(sp[1].payload.vm_name, "box")
  t:assert_eq(sp[1].payload.profile, "linux")
  t:assert_eq(sp[1].payload.memory_bytes, 256 * 1024 * 1024)
  t:assert(sp[1].payload.cid >= 3)
  local sd = pv.of(r.events, "vm_shutdown")
  t:assert_eq(#sd, 1)
  t:assert(sd[1].payload.duration_ns > 0)
  local _, p = pv.outcome(r.events, "failing.test.lua", "fails after printing to the console")
  t:assert_contains(p.console_excerpt, "--- vm box ---")
  t:assert_contains(p.console_excerpt, "last-words-before-failure")
  t:assert(r.stdout:match("vm box: rng_seed %d+\n"), "the log names the boot's seed, to repeat it: " .. r.stdout)
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)

test("a missing kernel is a clear error naming how to build", function(t)
  local r = pv.run({ pv.cases .. "/vm/boots.test.lua", env = "PROVIUM_IMAGE_DIR=/nonexistent/images" })
  t:assert_eq(r.code, 1)
  local o, p = pv.outcome(r.events, "boots.test.lua", "boots")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, "/nonexistent/images/linux.current")
  t:assert_contains(p.reason, "scripts/build-image")
end)

test("an agent protocol mismatch names both versions", function(t)
  local r = pv.run({ pv.cases .. "/vm/boots.test.lua", env = "PROVIUM_GUEST_CMDLINE=provium.protocol_version=99" })
  t:assert_eq(r.code, 1)
  local o, p = pv.outcome(r.events, "boots.test.lua", "boots")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, "version 99")
  t:assert_contains(p.reason, "version 1")
  t:assert_eq(#pv.of(r.events, "vm_spawned"), 0)
end)

local function image_dir()
  local d = os.getenv("PROVIUM_IMAGE_DIR") or ((os.getenv("XDG_DATA_HOME") or (os.getenv("HOME") .. "/.local/share")) .. "/provium/images")
  return d .. "/" .. pv.slurp(d .. "/linux.current"):gsub("%s+$", "")
end

test("a provium.lua profile: kernel, initrd (+ appended agent), cmdline, memory", function(t)
  local img = image_dir()
  local dir = pv.tmp("profile")
  os.execute("mkdir -p " .. pv.q(dir))
  local cfg = io.open(dir .. "/provium.lua", "w")
  cfg:write(string.format([[
return { profiles = { custom = {
  kernel = %q, initrd = %q, cmdline = "provium.marker=42", memory = "192M", accel = "tcg",
} } }
]], img .. "/vmlinuz", img .. "/initrd"))
  cfg:close()
  local tf = io.open(dir .. "/p.test.lua", "w")
  tf:write([[
test("custom profile", function(t)
  local v = provium:vm("c", "custom")
  v:boot()
  t:assert_contains(v:read_file("/proc/cmdline"), "provium.marker=42")
  local kb = tonumber(v:run("awk '/MemTotal/ {print $2}' /proc/meminfo").stdout)
  t:assert(kb > 120000 and kb < 200000, "about 192M: " .. kb)
end)
]])
  tf:close()
  local r = pv.run({ "--config", dir .. "/provium.lua", dir })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.of(r.events, "vm_spawned")[1].payload.profile, "custom")
  t:assert_eq(pv.of(r.events, "vm_spawned")[1].payload.memory_bytes, 192 * 1024 * 1024)

  -- a bad profile stops the run when provium.lua loads, before any test
  cfg = io.open(dir .. "/provium.lua", "w")
  cfg:write(string.format('return { profiles = { custom = { kernel = %q, initrd = %q, colour = "red" } } }',
    img .. "/vmlinuz", img .. "/initrd"))
  cfg:close()
  r = pv.run({ "--config", dir .. "/provium.lua", dir })
  t:assert_eq(r.code, 2, r.stdout .. r.stderr)
  t:assert_contains(r.stderr, "profiles.custom.colour is not a profile key")
  t:assert_eq(#pv.of(r.events, "test_started"), 0)
end)

test("a profile's disks: every VM of it gets them, provium:vm's disks replace them, bad ones stop the run", function(t)
  local img = image_dir()
  local dir = pv.tmp("profile-disks")
  os.execute("mkdir -p " .. pv.q(dir))
  local function config(disks)
    local cfg = io.open(dir .. "/provium.lua", "w")
    cfg:write(string.format('return { profiles = { store = { kernel = %q, initrd = %q, disks = %s } } }',
      img .. "/vmlinuz", img .. "/initrd", disks))
    cfg:close()
  end
  config('{ { id = "data", size = "16M", seed = 3 }, { id = "bulk", size = "8M", faults = false } }')
  local tf = io.open(dir .. "/d.test.lua", "w")
  tf:write([[
test("profile disks", function(t)
  local v = provium:vm("s", "store")
  v:boot()
  t:assert_eq(v:run("cat /sys/block/" .. v:disk("data"):device():sub(6) .. "/size").stdout, "32768\n")
  t:assert_eq(v:disk("bulk"):size(), 8 * 1024 * 1024)
  v:disk("data"):fault{ op = "read", probability = 0 }
  t:assert_raises(function() v:disk("bulk"):fault{} end)
  local w = provium:vm("w", "store", { disks = {} })
  t:assert_raises(function() w:disk("data") end)
end)
]])
  tf:close()
  local r = pv.run({ "--config", dir .. "/provium.lua", dir })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  for _, c in ipairs({
    { '{ { id = "data", size = "abc" } }', "profiles.store.disks[1].size" },
    { '{ { id = "data", image = "/nonexistent.img" } }', "profiles.store.disks[1].image: /nonexistent.img: No such file" },
    { '{ { id = "data", size = "1M", colour = 1 } }', 'profiles.store.disks[1] has an unknown key "colour"' },
    { '{ { size = "1M" } }', "profiles.store.disks[1] needs an id" },
    { '"data"', "profiles.store.disks must be a list of disks" },
  }) do
    config(c[1])
    r = pv.run({ "--config", dir .. "/provium.lua", dir })
    t:assert_eq(r.code, 2, c[1] .. ": " .. r.stdout .. r.stderr)
    t:assert_contains(r.stderr, c[2])
    t:assert_eq(#pv.of(r.events, "test_started"), 0)
  end
end)

test("files waiting on each other for VM resources: one is refused, none hangs", function(t)
  local dir = pv.tmp("sync")
  os.execute("mkdir -p " .. pv.q(dir))
  -- memory is what runs out: two runners (100M) and one 128M VM each (456M)
  -- leave 144M of 700M, less than either second VM needs (228M)
  local r = pv.run({ "--cpus", "2", "--mem", "700M", "--psi-threshold", "0", "--timeout", "200s",
                     pv.cases .. "/deadlock", env = "SYNC_DIR=" .. pv.q(dir) })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  local skipped = pv.of(r.events, "test_skipped")
  t:assert_eq(#skipped, 1)
  t:assert_contains(skipped[1].payload.reason, "waiting for pool resources held by each other")
  t:assert_contains(skipped[1].payload.reason, "this file holds 278MiB memory, 1 cpus, 1 vCPUs; free now: 144MiB memory")
  t:assert_eq(#pv.of(r.events, "test_passed"), 1)
end)

test("vm:run and p:wait without a timeout end with the test's meta.timeout, not the file's", function(t)
  local r = pv.run({ "--psi-threshold", "0", pv.cases .. "/vm/slow_run.test.lua" })
  t:assert_eq(r.code, 1, r.stdout .. r.stderr)
  local o, p = pv.outcome(r.events, "slow_run.test.lua", "sleeps past its test timeout")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, 'test timed out after 3s (meta.timeout) during vm:run("sleep 60")')
  t:assert(p.duration_ns < 20e9, "took " .. p.duration_ns)
  local o2, p2 = pv.outcome(r.events, "slow_run.test.lua", "waits past its test timeout")
  t:assert_eq(o2, "failed")
  t:assert_contains(p2.reason, "test timed out after 3s (meta.timeout) during p:wait() of process")
  t:assert(p2.duration_ns < 20e9, "took " .. p2.duration_ns)
  t:assert_eq(pv.outcome(r.events, "slow_run.test.lua", "the VM is still usable afterwards"), "passed")
end)
