-- Selection and run flags (issue 15): --rerun-failed, --since, --tag-meta,
-- --coverage, --no-progress, provium list --tests / --fixtures.
local pv = require("lib.pv")

local sel = pv.cases .. "/selection"
local rerun = sel .. "/rerun"

-- cmd's exit status and its output; stderr too unless cmd redirects it
local function sh(cmd)
  local p = io.popen(cmd:find("2>", 1, true) and cmd or cmd .. " 2>&1")
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

local function lines(s)
  local r = {}
  for l in s:gmatch("[^\n]+") do r[#r + 1] = l end
  return r
end

-- The outcome of every test in events, as "file::name=outcome" sorted.
local function outcomes(events)
  local r = {}
  for _, e in ipairs(events) do
    if e.kind == "test_passed" or e.kind == "test_failed" or e.kind == "test_skipped" then
      r[#r + 1] = e.payload.path .. "::" .. e.payload.name .. "=" .. e.kind:sub(6)
    end
  end
  table.sort(r)
  return table.concat(r, " ")
end

test("bad input for every flag: one line on stderr, exit 2", function(t)
  local cases = {
    { { "--tag-meta", "slow", sel }, '--tag-meta "slow": expected KEY=VALUE' },
    { { "--no-tag-meta", "=x", sel }, '--no-tag-meta "=x": expected KEY=VALUE' },
    { { "--tag-meta" }, "--tag-meta needs a value" },
    { { "--by", "owner", sel }, "--by goes with --coverage" },
    { { "--coverage", "--by", "", sel }, "--by needs a meta key" },
    { { "--tests", sel }, "--tests goes with provium list" },
    { { "--fixtures", sel }, "--fixtures goes with provium list" },
    { { "list", "--tests", "--fixtures", sel }, "--tests or --fixtures, not both" },
    { { "list", "--coverage", sel }, "--coverage goes with a run" },
    { { "list", "--no-progress", sel }, "--no-progress goes with a run" },
    { { "list", "--fixtures", "--since", "HEAD", sel }, "--since selects test files" },
    { { "fixture", "list", "--rerun-failed" }, "--rerun-failed selects test files" },
    { { "--since", "", sel }, "--since needs a git ref or a file" },
  }
  for _, c in ipairs(cases) do
    local args = { table.unpack(c[1]) }
    args.no_save = true
    local r = pv.run(args)
    t:assert_eq(r.code, 2, table.concat(c[1], " ") .. " -> " .. r.stderr)
    t:assert_contains(r.stderr, c[2])
    local _, n = r.stderr:gsub("\n", "")
    t:assert_eq(n, 1, "one line: " .. r.stderr)
  end
end)

test("--tag-meta / --no-tag-meta: values compared in their string form", function(t)
  local r = pv.run({ "--tag-meta", "owner=net", sel .. "/meta.test.lua" })
  t:assert_eq(r.code, 1, r.stderr) -- "net fails" runs and fails
  t:assert_eq(outcomes(r.events), "meta.test.lua::disk write=skipped meta.test.lua::net fails=failed "
    .. "meta.test.lua::net lease=passed meta.test.lua::untouched=skipped")
  local _, p = pv.outcome(r.events, "meta.test.lua", "disk write")
  t:assert_eq(p.reason, "filtered out by --tag-meta owner=net")

  -- repeatable: any of them; an integer, a float as Lua prints it, an array element
  r = pv.run({ "--tag-meta", "level=3", "--tag-meta", "ratio=2.0", sel .. "/meta.test.lua" })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(outcomes(r.events), "meta.test.lua::disk write=passed meta.test.lua::net fails=skipped "
    .. "meta.test.lua::net lease=passed meta.test.lua::untouched=skipped")
  r = pv.run({ "--tag-meta", "ratio=2", "--tag-meta", "tags=fast", sel .. "/meta.test.lua" })
  t:assert_eq(pv.outcome(r.events, "meta.test.lua", "net lease"), "passed")
  t:assert_eq(pv.outcome(r.events, "meta.test.lua", "disk write"), "skipped")

  r = pv.run({ "--no-tag-meta", "owner=net", sel .. "/meta.test.lua" })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(outcomes(r.events), "meta.test.lua::disk write=passed meta.test.lua::net fails=skipped "
    .. "meta.test.lua::net lease=skipped meta.test.lua::untouched=passed")
  _, p = pv.outcome(r.events, "meta.test.lua", "net lease")
  t:assert_eq(p.reason, "filtered out by --no-tag-meta owner=net")
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)

test("--rerun-failed: the failed tests, a crashed file whole, then nothing", function(t)
  local cache = pv.tmp("rerun-cache")
  -- no record yet: everything runs, and says so
  local r = pv.run({ "--rerun-failed", "--cache-dir", cache, rerun })
  t:assert_eq(r.code, 1, r.stderr)
  t:assert_contains(r.stderr, "--rerun-failed: no earlier run of " .. rerun .. " is recorded; running all its tests")
  t:assert_eq(pv.file_status(r.events, "crash.test.lua"), "crashed")
  t:assert_eq(pv.outcome(r.events, "mixed.test.lua", "fails until fixed"), "failed")
  t:assert_eq(#pv.of(r.events, "file_discovered"), 3)

  -- the rerun: good.test.lua is not run at all; of mixed only its failure
  -- runs, the others are skipped saying why; crash runs whole
  r = pv.run({ "--rerun-failed", "--cache-dir", cache, "--jobs", "1", rerun, env = "PV_FIXED=1" })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_contains(r.stderr, "--rerun-failed: 1 failed test and 1 file that failed whole")
  local files = {}
  for _, e in ipairs(pv.of(r.events, "file_discovered")) do files[#files + 1] = e.payload.path end
  t:assert_eq(files, { "crash.test.lua", "mixed.test.lua" })
  t:assert_eq(outcomes(r.events), "crash.test.lua::dies=passed crash.test.lua::first=passed crash.test.lua::last=passed "
    .. "mixed.test.lua::also passes=skipped mixed.test.lua::fails until fixed=passed mixed.test.lua::passes=skipped")
  local _, p = pv.outcome(r.events, "mixed.test.lua", "passes")
  t:assert_eq(p.reason, "did not fail last time (--rerun-failed)")
  t:assert_eq(pv.check_guarantees(r.events), nil)

  -- everything passed: one line, exit 0, nothing runs
  r = pv.run({ "--rerun-failed", "--cache-dir", cache, rerun })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(r.stderr, "provium: --rerun-failed: no test failed in the last run of " .. rerun .. "; nothing to run\n")
  t:assert_eq(#r.events, 0)
  t:assert_eq(r.stdout, "")
end)

test("--rerun-failed: a run that leaves a failure out keeps it; list shows what would rerun", function(t)
  local cache = pv.tmp("rerun-cache2")
  local r = pv.run({ "--cache-dir", cache, rerun })
  t:assert_eq(r.code, 1, r.stderr)
  -- a --filter run of good.test.lua learns nothing of the others
  r = pv.run({ "--cache-dir", cache, "--filter", "good", rerun })
  t:assert_eq(r.code, 0, r.stderr)
  -- nor does a run that skips the failing test by a filter
  r = pv.run({ "--cache-dir", cache, "--tag-meta", "owner=disk", "--filter", "mixed", rerun })
  t:assert_eq(r.code, 0, r.stderr)
  local code, out = sh(string.format("%s list --rerun-failed --cache-dir %s %s", pv.q(pv.bin), pv.q(cache), pv.q(rerun)))
  t:assert_eq(code, 0, out)
  t:assert_contains(out, "crash.test.lua\nmixed.test.lua\n")
  t:assert(not out:find("good.test.lua", 1, true), out)
  code, out = sh(string.format("%s list --tests --rerun-failed --cache-dir %s %s 2>/dev/null", pv.q(pv.bin),
    pv.q(cache), pv.q(rerun)))
  t:assert_eq(lines(out), { "crash.test.lua:2 :: first", "crash.test.lua:3 :: dies", "crash.test.lua:6 :: last",
    'mixed.test.lua:3 :: fails until fixed  meta: owner="net"' })
  -- once mixed passes, only crash is left
  r = pv.run({ "--cache-dir", cache, "--filter", "mixed", rerun, env = "PV_FIXED=1" })
  t:assert_eq(r.code, 0, r.stderr)
  code, out = sh(string.format("%s list --rerun-failed --cache-dir %s %s 2>/dev/null", pv.q(pv.bin), pv.q(cache),
    pv.q(rerun)))
  t:assert_eq(out, "crash.test.lua\n")
end)

test("--rerun-failed: an interrupted run records what completed", function(t)
  local cache, fifo, ev = pv.tmp("int-cache"), pv.tmp("int-fifo"), pv.tmp("int.events")
  local dir = sel .. "/interrupt"
  os.execute("mkfifo " .. pv.q(fifo))
  -- a.test.lua fails and completes, then b.test.lua blocks until SIGINT
  local code, out = sh(string.format("PV_SIGNAL_FIFO=%s %s --jobs 1 --cache-dir %s --save-events %s %s >/dev/null 2>&1 & "
    .. "pid=$!; timeout 240 sh -c 'read l < \"$1\"' sh %s; ready=$?; kill -INT $pid; wait $pid; echo \"$? $ready\"",
    pv.q(fifo), pv.q(pv.bin), pv.q(cache), pv.q(ev), pv.q(dir), pv.q(fifo)))
  t:assert_eq(out, "130 0\n", "interrupted once b was blocking")
  local events = pv.decode(ev)
  t:assert_eq(pv.outcome(events, "b.test.lua", "blocks"), "skipped")
  code, out = sh(string.format("%s list --tests --rerun-failed --cache-dir %s %s 2>/dev/null", pv.q(pv.bin), pv.q(cache),
    pv.q(dir)))
  t:assert_eq(code, 0, out)
  t:assert_eq(out, "a.test.lua:2 :: fails\n")
end)

test("--rerun-failed without a usable cache directory: one line, exit 2", function(t)
  local r = pv.run({ "--rerun-failed", "--cache-dir", "/proc/no/such/dir", rerun, no_save = true })
  t:assert_eq(r.code, 2)
  local _, n = r.stderr:gsub("\n", "")
  t:assert_eq(n, 1, r.stderr)
end)

test("--since REF: files changed since a git ref, with helpers and fixtures; or newer than a file", function(t)
  local repo = pv.tmp("since-repo")
  local function w(rel, text)
    os.execute("mkdir -p " .. pv.q((repo .. "/" .. rel):match("^(.*)/")))
    local f = assert(io.open(repo .. "/" .. rel, "w"))
    f:write(text)
    f:close()
  end
  w("t/a.test.lua", 'local h = require("lib.h")\ntest("a", function(t) end)\n')
  w("t/b.test.lua", 'test("b", function(t) end)\n')
  w("t/c.test.lua", 'local v = provium.vm_fixture("fx")\ntest("c", function(t) end)\n')
  w("t/lib/h.lua", "return {}\n")
  w("t/fx.fixture.lua", "return nil\n")
  local git = "git -C " .. pv.q(repo) .. " -c user.name=t -c user.email=t@t "
  local code, out = sh(git .. "init -q . && " .. git .. "add -A && " .. git .. "commit -qm one")
  t:assert_eq(code, 0, out)
  local root = repo .. "/t"
  local function list(ref)
    local c, o = sh(string.format("%s list --since %s %s 2>/dev/null", pv.q(pv.bin), pv.q(ref), pv.q(root)))
    t:assert_eq(c, 0, o)
    return table.concat(lines(o), " ")
  end
  -- nothing changed: one line, exit 0, nothing runs
  local r = pv.run({ "--since", "HEAD", root })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(r.stderr, "provium: --since HEAD: none of the 3 test files changed, nor a helper or fixture they use; "
    .. "nothing to run\n")
  t:assert_eq(#r.events, 0)

  w("t/lib/h.lua", "return { changed = true }\n")
  t:assert_eq(list("HEAD"), "a.test.lua")
  w("t/fx.fixture.lua", "return nil -- edited\n")
  t:assert_eq(list("HEAD"), "a.test.lua c.test.lua  fixtures: fx")
  sh(git .. "commit -qam two")
  t:assert_eq(list("HEAD"), "")
  t:assert_eq(list("HEAD~1"), "a.test.lua c.test.lua  fixtures: fx")
  w("t/new.test.lua", 'test("n", function(t) end)\n') -- untracked
  -- a run: only the new file is discovered and runs
  r = pv.run({ "--since", "HEAD", root })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(outcomes(r.events), "new.test.lua::n=passed")

  -- an unknown ref: one line naming the repository and git's words
  r = pv.run({ "--since", "HEAD~99", root, no_save = true })
  t:assert_eq(r.code, 2)
  local real = select(2, sh("realpath " .. pv.q(repo))):gsub("\n", "")
  t:assert_eq(r.stderr, "provium: --since HEAD~99: not a file, nor a git ref in " .. real
    .. " (git: fatal: Needed a single revision)\n")
  -- outside a repository
  local plain = pv.tmp("since-plain")
  os.execute("mkdir -p " .. pv.q(plain) .. " && cp " .. pv.q(root .. "/b.test.lua") .. " " .. pv.q(plain))
  r = pv.run({ "--since", "main", plain, no_save = true })
  t:assert_eq(r.code, 2)
  t:assert_contains(r.stderr, "--since main: not a file, and " .. plain .. " is not in a git repository (git: ")

  -- a file as REF: files modified after it
  local stamp = pv.tmp("since-stamp")
  os.execute("touch -d '2001-01-01' " .. pv.q(stamp) .. " && touch -d '2000-01-01' " .. pv.q(root) .. "/*.lua "
    .. pv.q(root) .. "/lib/h.lua && touch -d '2002-01-01' " .. pv.q(root .. "/b.test.lua"))
  t:assert_eq(list(stamp), "b.test.lua")
end)

test("--coverage [--by KEY]: the report of this run, as provium-coverage gives it", function(t)
  local r = pv.run({ "--coverage", "--by", "owner", sel .. "/meta.test.lua" })
  t:assert_eq(r.code, 1, r.stderr)
  -- the same events through provium-coverage: the same report, at the end of the output
  local saved = pv.tmp("coverage.events")
  local code = os.execute(string.format("%s --coverage --by owner --save-events %s %s >/dev/null 2>&1", pv.q(pv.bin),
    pv.q(saved), pv.q(sel .. "/meta.test.lua")))
  t:assert(not code, "the run has a failing test")
  local _, want = sh(string.format("%s --from %s --by owner", pv.q(pv.coverage), pv.q(saved)))
  t:assert_eq(r.stdout:sub(-#want - 2), "\n\n" .. want)
  t:assert(want:match("\nnet%s+1%s+1%s+0%s+2\n"), want)
  t:assert(want:match("\n<unset>%s+1%s+0%s+0%s+1\n"), want)
  t:assert(want:match("^owner%s+passed%s+failed%s+skipped%s+total\n"), want)
  -- default key spec; -v lists the tests
  r = pv.run({ "--coverage", "-v", sel .. "/meta.test.lua" })
  t:assert(r.stdout:match("\nnet/dhcp%s+1%s+1%s+0%s+2\n    passed  meta.test.lua :: net lease\n"), r.stdout)
  -- with --json the report goes with the human one, to stderr: stdout stays JSON Lines
  r = pv.run({ "--coverage", "--json", sel .. "/meta.test.lua", no_save = true })
  t:assert(r.stderr:match("\nspec%s+passed%s+failed"), r.stderr)
  for _, l in ipairs(lines(r.stdout)) do t:assert(l:match("^{"), "JSON: " .. l) end
  -- without --coverage there is no report
  r = pv.run({ sel .. "/meta.test.lua" })
  t:assert(not r.stdout:find("passed   failed", 1, true), r.stdout)
end)

test("--no-progress: no progress line, even on a terminal", function(t)
  local function on_tty(extra)
    local _, out = sh(string.format("script -qefc %s /dev/null", pv.q(pv.q(pv.bin) .. " " .. extra .. " "
      .. pv.q(rerun .. "/good.test.lua"))))
    return out
  end
  local with = on_tty("")
  t:assert_contains(with, "files]", "a terminal gets the progress line")
  local without = on_tty("--no-progress")
  t:assert_contains(without, "1 passed")
  t:assert(not without:find("files]", 1, true), without)
  t:assert(not without:find("\27[K", 1, true), "no line redrawn: " .. without)
end)

test("provium list --tests: every test with tags and meta; --json: one object each", function(t)
  local code, out = sh(string.format("%s list --tests %s 2>/dev/null", pv.q(pv.bin), pv.q(sel .. "/meta.test.lua")))
  t:assert_eq(code, 0, out)
  t:assert_eq(lines(out), {
    'meta.test.lua:3 :: net lease  tags: net, fast  meta: owner="net" level=2 ratio=2.0 spec="net/dhcp"',
    'meta.test.lua:4 :: disk write  meta: owner="disk" level=3 spec="disk/io"',
    "meta.test.lua:5 :: untouched",
    'meta.test.lua:6 :: net fails  meta: owner="net" spec="net/dhcp"',
  })
  -- the count on stderr
  code, out = sh(string.format("%s list --tests %s 2>&1 >/dev/null", pv.q(pv.bin), pv.q(sel .. "/meta.test.lua")))
  t:assert_eq(out, "4 tests in 1 file\n")
  code, out = sh(string.format("%s list --tests --json %s 2>/dev/null", pv.q(pv.bin), pv.q(sel .. "/meta.test.lua")))
  t:assert_eq(code, 0, out)
  local l = lines(out)
  t:assert_eq(#l, 4)
  local json = require("cjson")
  local first = json.decode(l[1])
  t:assert_eq(first.path, "meta.test.lua")
  t:assert_eq(first.line, 3)
  t:assert_eq(first.name, "net lease")
  t:assert_eq(first.tags, { "net", "fast" })
  t:assert_eq(first.meta.owner, "net")
  t:assert_eq(first.meta.level, 2)
  t:assert_eq(json.decode(l[3]).meta, {})
  -- the listing agrees with what a run reports
  local r = pv.run({ sel .. "/meta.test.lua" })
  for i, e in ipairs(pv.of(r.events, "test_started")) do
    t:assert_eq(json.decode(l[i]).name, e.payload.name)
    t:assert_eq(json.decode(l[i]).meta.owner, e.payload.meta.owner)
  end
end)

test("provium list --fixtures: every fixture, its key, and whether it is cached", function(t)
  local cache = pv.tmp("fx-cache")
  local root = pv.cases .. "/fixtures"
  local code, out = sh(string.format("%s list --fixtures --json --cache-dir %s %s 2>/dev/null", pv.q(pv.bin),
    pv.q(cache), pv.q(root)))
  t:assert_eq(code, 0, out)
  local json = require("cjson")
  local l = lines(out)
  t:assert(#l >= 3, out)
  local base
  for _, s in ipairs(l) do
    local o = json.decode(s)
    if o.fixture == "base" then base = o end
    t:assert_eq(o.cached, false)
  end
  t:assert(base, "base is listed: " .. out)
  t:assert(base.key:match("^" .. string.rep("%x", 32) .. "$"), base.key)
  t:assert_eq(base.state, "not cached")
  -- an entry under that key is found (an empty one is corrupt: not usable)
  os.execute("mkdir -p " .. pv.q(cache .. "/" .. base.key))
  code, out = sh(string.format("%s list --fixtures --cache-dir %s %s", pv.q(pv.bin), pv.q(cache), pv.q(root)))
  t:assert_eq(code, 0, out)
  t:assert_contains(out, base.key:sub(1, 16) .. "  corrupt     base\n")
  t:assert_contains(out, " fixtures, 0 cached, in " .. cache)
  -- the key is the one provium fixture list would show for that entry
  code, out = sh(string.format("%s fixture list --cache-dir %s %s", pv.q(pv.bin), pv.q(cache), pv.q(root)))
  t:assert_contains(out, base.key:sub(1, 16))
end)
