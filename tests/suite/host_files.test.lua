-- vm:push_file and provium:depends_on_file, seen from outside: nested runs of
-- a copy of tests/cases/fixture_files (whose host files the tests edit) with
-- their own cache directory.
local pv = require("lib.pv")

local root = pv.tmp("fixture_files")
local cache = pv.tmp("hf-cache")
os.execute("cp -r " .. pv.q(pv.cases .. "/fixture_files") .. " " .. pv.q(root))

local function put(rel, text)
  local f = assert(io.open(root .. "/" .. rel, "w"))
  f:write(text)
  f:close()
end

local function run(filter, want)
  return pv.run({ "--psi-threshold", "0", "--cache-dir", cache, "--filter", filter, root,
    env = want and ("WANT=" .. pv.q(want)) or nil })
end

test("push_file and depends_on_file outside fixtures", function(t)
  local r = run("direct")
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "test_passed"), 2)
end)

test("editing a pushed or depended-on host file rebuilds the fixture", function(t)
  local r = run("uses_pushed", "payload v1\ndep v1\n")
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "fixture_build_started"), 1)
  r = run("uses_pushed", "payload v1\ndep v1\n")
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "fixture_build_started"), 0, "unchanged files: the cached entry")
  put("data/dep.txt", "dep v2\n")
  r = run("uses_pushed", "payload v1\ndep v2\n")
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "fixture_build_started"), 1, "a depends_on_file edit rebuilds")
  put("data/payload.txt", "payload v2\n")
  r = run("uses_pushed", "payload v2\ndep v2\n")
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "fixture_build_started"), 1, "a push_file edit rebuilds")
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)

test("a fixture naming a host file by a variable fails, saying why", function(t)
  local r = run("uses_dynamic")
  t:assert(r.code ~= 0)
  local o, p = pv.outcome(r.events, "uses_dynamic.test.lua", "a fixture naming a host file by a variable fails to build")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, 'provium:depends_on_file("data/dep.txt") in a fixture needs the path as a literal string')
end)
