-- Fixture cache, seen from outside: nested runs of tests/cases/fixtures with
-- their own cache directory, decoded events, and the files on disk.
local pv = require("lib.pv")

local cases = pv.cases .. "/fixtures"
local cache = pv.tmp("cache")

-- cold boots: these tests count the cache's entries, and a warm boot's
-- template would be one of them (docs/lua-api.md, "Warm boot")
local function run(extra)
  local args = { "--psi-threshold", "0", "--cache-dir", cache }
  for _, a in ipairs(extra) do args[#args + 1] = a end
  args.env = "PROVIUM_COLD_BOOT=1 " .. (extra.env or "")
  return pv.run(args)
end

local function entries(dir)
  local p = io.popen("ls -1 " .. pv.q(dir) .. " 2>/dev/null")
  local r = {}
  for l in p:lines() do r[#r + 1] = l end
  p:close()
  return r
end

local function entry_dir(dir)
  for _, e in ipairs(entries(dir)) do
    if e:match("^%x+$") then return dir .. "/" .. e end
  end
end

test("two files build a fixture once: one builds, the other waits, then resumes", function(t)
  local r = run({ cases, "--filter", "uses_" })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "fixture_build_started"), 1)
  local done = pv.of(r.events, "fixture_build_done")
  t:assert_eq(#done, 1)
  t:assert_eq(done[1].payload.path, "base")
  -- an idle 256 MiB guest: the cached snapshot stays under 15% of its RAM
  t:assert(done[1].payload.snapshot_bytes > 0 and done[1].payload.snapshot_bytes < 0.15 * 256 * 2 ^ 20,
    "snapshot_bytes " .. done[1].payload.snapshot_bytes)
  local w = pv.of(r.events, "fixture_build_waiting")
  t:assert_eq(#w, 1, "both files start at once: one waits on the other's build")
  t:assert_eq(w[1].payload.path, "base")
  local builder = pv.of(r.events, "vm_spawned")[1].payload.file
  t:assert_eq(w[1].payload.held_by_file, builder)
  -- the waiting file resumed from the cache once the build was done
  t:assert_eq(pv.count(r.events, "fixture_cache_hit"), 1)
  t:assert_eq(pv.check_guarantees(r.events), nil)
  -- the entry on disk: a directory per key, mode 0700, manifest + compressed VM
  local e = entry_dir(cache)
  t:assert(e, "no entry in " .. cache)
  t:assert_contains(pv.slurp(e .. "/manifest.json"), '"fixture": "base"')
  local p = io.popen("stat -c %a " .. pv.q(cache))
  t:assert_eq(p:read("l"), "700")
  p:close()
end)

test("a second run resumes from the cache: no build, a hit per file", function(t)
  local r = run({ cases, "--filter", "uses_" })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "fixture_build_started"), 0)
  t:assert_eq(pv.count(r.events, "fixture_cache_hit"), 2)
  -- a hit is reported only after the VM was resumed
  for _, e in ipairs(r.events) do
    if e.kind == "vm_spawned" then break end
    t:assert(e.kind ~= "fixture_cache_hit", "cache hit before any VM was resumed")
  end
end)

test("an entry that does not resume is deleted and rebuilt, with a warning, never a hit", function(t)
  local e = entry_dir(cache)
  -- same size, garbage inside: only a resume can tell
  os.execute("dd if=/dev/urandom of=" .. pv.q(e .. "/vm0.zst") ..
    " bs=4096 count=64 seek=16 conv=notrunc status=none")
  local r = run({ cases, "--filter", "uses_a" })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_contains(r.stderr, 'warning: fixture "base"')
  t:assert_contains(r.stderr, "does not resume")
  t:assert_eq(pv.count(r.events, "fixture_cache_hit"), 0)
  t:assert_eq(pv.count(r.events, "fixture_build_started"), 1)
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)

test("a truncated entry is unreadable: deleted and rebuilt", function(t)
  local e = entry_dir(cache)
  os.execute("truncate -s 1000 " .. pv.q(e .. "/vm0.zst"))
  local r = run({ cases, "--filter", "uses_b" })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_contains(r.stderr, "is unreadable")
  t:assert_eq(pv.count(r.events, "fixture_cache_hit"), 0)
  t:assert_eq(pv.count(r.events, "fixture_build_started"), 1)
  local r2 = run({ cases, "--filter", "uses_b" })
  t:assert_eq(pv.count(r2.events, "fixture_cache_hit"), 1, "the rebuilt entry is good")
end)

test("a full disk leaves no partial entry and says what happened", function(t)
  local small = pv.tmp("small")
  os.execute("mkdir -p " .. pv.q(small))
  if not os.execute("mount -t tmpfs -o size=4m,mode=0700 provium-test " .. pv.q(small) .. " 2>/dev/null") then
    t:skip("needs root to mount a small tmpfs")
  end
  local r = pv.run({ "--psi-threshold", "0", "--cache-dir", small, cases, "--filter", "uses_a" })
  local listing = entries(small)
  os.execute("umount " .. pv.q(small))
  t:assert_eq(r.code, 1)
  local _, p = pv.outcome(r.events, "uses_a.test.lua", "<load>")
  t:assert(p, r.stdout .. r.stderr)
  t:assert_contains(p.reason, "fixture cache")
  t:assert_contains(p.reason, "No space left on device")
  for _, f in ipairs(listing) do
    t:assert(not f:match("^%x+$") and not f:match("%.tmp%."), "left behind: " .. f)
  end
  local done = pv.of(r.events, "fixture_build_done")
  t:assert_eq(#done, 1)
  t:assert_eq(done[1].payload.snapshot_bytes, 0, "a failed build is done with 0 bytes")
end)

test("a file waiting on a fixture build counts as stuck: the builder is refused, none hangs", function(t)
  local dir = pv.tmp("fxsync")
  os.execute("mkdir -p " .. pv.q(dir))
  -- 700M: two runners and their VMs (556M) leave less than the builder's VM needs (228M)
  local r = pv.run({ "--cpus", "2", "--mem", "700M", "--psi-threshold", "0", "--timeout", "200s",
                     "--cache-dir", pv.tmp("fxdl"), pv.cases .. "/fixture_deadlock", env = "SYNC_DIR=" .. pv.q(dir) })
  t:assert_eq(r.code, 1, r.stdout .. r.stderr)
  local failed = pv.of(r.events, "test_failed")
  t:assert_eq(#failed, 1)
  t:assert_contains(failed[1].payload.reason, 'fixture "idle" failed to build')
  t:assert_contains(failed[1].payload.reason, "or for a fixture this boot would build")
  t:assert_eq(#pv.of(r.events, "test_passed"), 1, "the waiting file builds it once the first gave up")
  t:assert_eq(pv.count(r.events, "fixture_build_waiting"), 1)
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)

test("a fixture with a populated disk: built once, resumed twice per file with private copies, a hit next run", function(t)
  local dcache = pv.tmp("diskcache")
  local function drun()
    return pv.run({ "--psi-threshold", "0", "--cache-dir", dcache, pv.cases .. "/disk_fixture" })
  end
  local r = drun()
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "test_passed"), 3)
  local done = pv.of(r.events, "fixture_build_done")
  t:assert_eq(#done, 1)
  local dir = entry_dir(dcache)
  local zst = io.open(dir .. "/vm0.zst", "rb"):seek("end")
  -- the 4 MiB the builder wrote are counted, the disk's 252 unwritten MiB are not
  t:assert(done[1].payload.snapshot_bytes >= zst + 4 * 1024 * 1024, tostring(done[1].payload.snapshot_bytes))
  t:assert(done[1].payload.snapshot_bytes < zst + 64 * 1024 * 1024, tostring(done[1].payload.snapshot_bytes))
  t:assert_eq(pv.check_guarantees(r.events), nil)
  r = drun()
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "fixture_build_started"), 0)
  t:assert_eq(pv.count(r.events, "fixture_cache_hit"), 2)
  t:assert_eq(pv.count(r.events, "test_passed"), 3)
end)
