-- Fixtures through the Lua API and the `provium fixture` commands: nested
-- runs on a copy of tests/cases/fixtures (some tests edit it).
local pv = require("lib.pv")

local root = pv.tmp("fx")
os.execute("cp -r " .. pv.q(pv.cases .. "/fixtures") .. " " .. pv.q(root))
local cache = pv.tmp("fxcache")

-- cold boots: these tests count the cache's entries, and a warm boot's
-- template would be one of them (docs/lua-api.md, "Warm boot")
local function run(args)
  local a = { "--psi-threshold", "0", "--cache-dir", cache }
  for _, x in ipairs(args) do a[#a + 1] = x end
  a.env = "PROVIUM_COLD_BOOT=1 " .. (args.env or "")
  return pv.run(a)
end

-- provium fixture ... run from the copy, whose root is "."
local function admin(args)
  local a = { "fixture" }
  for _, x in ipairs(args) do a[#a + 1] = x end
  a[#a + 1] = "--cache-dir"
  a[#a + 1] = cache
  a.env = "cd " .. pv.q(root) .. " && PROVIUM_COLD_BOOT=1"
  a.no_save = args.no_save
  return pv.run(a)
end

test("every fixture case passes: reset between tests, two resumes, nested, lab, a lab with a bridge, misuse", function(t)
  local r = run({ root })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  local built = {}
  for _, e in ipairs(pv.of(r.events, "fixture_build_done")) do
    built[e.payload.path] = (built[e.payload.path] or 0) + 1
  end
  t:assert_eq(built.base, 1, "base is built once, though three files and a nested fixture use it")
  t:assert_eq(built.nested, 1)
  t:assert_eq(built.lab, 1)
  t:assert_eq(built.netlab, 1, "netlab (a bridge) is built once for two files")
  t:assert_eq(pv.check_guarantees(r.events), nil)
  t:assert_eq(pv.outcome(r.events, "reset.test.lua", "second test sees none of it"), "passed")
end)

test("fixture list shows the entries; build of a cached fixture is a hit", function(t)
  local l = admin({ "list", no_save = true })
  t:assert_eq(l.code, 0, l.stderr)
  t:assert_contains(l.stdout, "KEY")
  t:assert_contains(l.stdout, " base\n")
  t:assert_contains(l.stdout, " nested\n")
  t:assert_contains(l.stdout, " lab\n")
  t:assert_contains(l.stdout, " netlab\n")
  t:assert_contains(l.stderr, "4 entries")
  local b = admin({ "build", "base.fixture.lua" })
  t:assert_eq(b.code, 0, b.stdout .. b.stderr)
  t:assert_eq(pv.count(b.events, "fixture_build_started"), 0)
  t:assert_eq(pv.count(b.events, "fixture_cache_hit"), 1)
  local rb = admin({ "rebuild", "base" })
  t:assert_eq(rb.code, 0, rb.stdout .. rb.stderr)
  t:assert_eq(pv.count(rb.events, "fixture_build_started"), 1)
  t:assert_eq(pv.of(rb.events, "test_passed")[1].payload.name, "rebuild base")
end)

test("editing a helper the builder requires rebuilds; the old entry is stale", function(t)
  local f = io.open(root .. "/lib/fxhelper.lua", "w")
  f:write('local M = {}\nfunction M.stamp() return "v2" end\nreturn M\n')
  f:close()
  local r = run({ root, "--filter", "uses_a", env = "FX_EXPECT=v2" })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "fixture_build_started"), 1)
  -- nested depends on base's key: stale too
  local s = admin({ "stale", no_save = true })
  t:assert_eq(s.code, 0, s.stderr)
  t:assert_contains(s.stdout, " base (stale)")
  t:assert_contains(s.stdout, " nested (stale)")
  t:assert(not s.stdout:find(" lab"), s.stdout)
  local c = admin({ "clean", "--stale", no_save = true })
  t:assert_eq(c.code, 0, c.stderr)
  t:assert_contains(c.stderr, "removed 2 entries")
  local l = admin({ "list", no_save = true })
  t:assert_contains(l.stderr, "3 entries")
  t:assert(not l.stdout:find("stale"), l.stdout)
  local all = admin({ "clean", no_save = true })
  t:assert_contains(all.stderr, "removed 3 entries")
end)

test("editing the builder itself rebuilds", function(t)
  local r1 = run({ root, "--filter", "uses_a", env = "FX_EXPECT=v2" })
  t:assert_eq(pv.count(r1.events, "fixture_build_started"), 1)
  local f = io.open(root .. "/base.fixture.lua", "a")
  f:write("-- an edit\n")
  f:close()
  local r2 = run({ root, "--filter", "uses_a", env = "FX_EXPECT=v2" })
  t:assert_eq(r2.code, 0, r2.stdout .. r2.stderr)
  t:assert_eq(pv.count(r2.events, "fixture_build_started"), 1)
end)

test("provium fixture: usage errors", function(t)
  local r = pv.run({ "fixture", no_save = true })
  t:assert_eq(r.code, 2)
  t:assert_contains(r.stderr, "needs a command: list, build, rebuild, clean, stale")
  r = pv.run({ "fixture", "frobnicate", no_save = true })
  t:assert_eq(r.code, 2)
  t:assert_contains(r.stderr, "unknown fixture command 'frobnicate'")
  r = admin({ "build", no_save = true })
  t:assert_eq(r.code, 2)
  t:assert_contains(r.stderr, "needs the fixture(s) to build")
  r = admin({ "build", "no/such", no_save = true })
  t:assert_eq(r.code, 2)
  t:assert_contains(r.stderr, 'fixture "no/such" not found')
  r = pv.run({ "--cache-dir", "/proc/nope", pv.cases .. "/basic", no_save = true })
  t:assert_eq(r.code, 2)
  t:assert_contains(r.stderr, "--cache-dir")
end)

test("cache_max_size evicts the least recently used entries at start-up", function(t)
  -- the cache holds base before and after the edit of the last test
  local cfg = pv.tmp("small.lua")
  local f = io.open(cfg, "w")
  f:write('return { cache_max_size = "1K" }\n')
  f:close()
  -- eviction happens before anything is dispatched
  local r = run({ "--config", cfg, root, "--filter", "misuse" })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_contains(r.stderr, "fixture cache over 1KiB: removed 2 least recently used entries")
  local l = admin({ "list", no_save = true })
  t:assert_contains(l.stderr, "0 entries")
end)
