-- --junit PATH and --json-summary PATH on real runs: passing, failing and
-- skipped tests (cases/basic), a crash, a timeout and load errors
-- (cases/isolation), text XML cannot carry as is (cases/reports), an
-- interrupted run (cases/signals/block), and the bad inputs. Every JUnit
-- report is checked against lib/junit.xsd with xmllint, then read back with
-- python3's xml.etree the way a CI server would; no VM boots.
local pv = require("lib.pv")

local xsd = pv.here .. "/junit.xsd"

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

local seq = 0
local function fresh(name)
  seq = seq + 1
  local dir = pv.tmp("reports" .. seq)
  os.execute("mkdir -p " .. pv.q(dir))
  return dir, dir .. "/" .. name
end

-- xmllint's verdict: nil when valid, else what it said.
local function schema_error(path)
  local out, code = sh(string.format("xmllint --noout --schema %s %s 2>&1", pv.q(xsd), pv.q(path)))
  if code ~= 0 then return out end
end

local function read_junit(path)
  local out, code = sh(string.format("/usr/bin/python3 %s %s 2>&1", pv.q(pv.here .. "/junit2json.py"), pv.q(path)))
  assert(code == 0, "xml.etree could not read " .. path .. ": " .. out)
  return json.decode(out)
end

local function read_summary(path)
  local files = {}
  for line in pv.slurp(path):gmatch("[^\n]+") do
    local o = json.decode(line)
    files[o.path] = o
    files[#files + 1] = o
  end
  return files
end

local function suite(report, name)
  for _, s in ipairs(report.suites) do
    if s.attrs.name == name then return s end
  end
end

local function case(s, name)
  for _, c in ipairs(s.cases) do
    if c.attrs.name == name then return c end
  end
end

local function entry(file, name)
  for _, e in ipairs(file.tests) do
    if e.name == name then return e end
  end
end

-- Runs provium on a case directory with both reports; returns the run, the
-- JUnit report read back, the summary, and the report's directory.
local function run_with_reports(dir_case, extra)
  local dir, xml = fresh("junit.xml")
  local jsonl = dir .. "/summary.jsonl"
  local args = { "--junit", xml, "--json-summary", jsonl }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  args[#args + 1] = pv.cases .. "/" .. dir_case
  local r = pv.run(args)
  return r, xml, jsonl, dir
end

local basic, basic_xml, basic_jsonl, basic_dir = run_with_reports("basic")
local iso, iso_xml, iso_jsonl = run_with_reports("isolation")
local weird, weird_xml, weird_jsonl = run_with_reports("reports")

test("the JUnit reports validate against the schema", function(t)
  t:assert_eq(basic.code, 1, basic.stderr)
  t:assert_eq(iso.code, 1, iso.stderr)
  t:assert_eq(weird.code, 1, weird.stderr)
  for _, p in ipairs({ basic_xml, iso_xml, weird_xml }) do
    t:assert_eq(schema_error(p), nil, p)
  end
end)

test("JUnit: counts per file and in total agree with the events", function(t)
  local rep = read_junit(basic_xml)
  t:assert_eq(rep.tag, "testsuites")
  local n = { passed = 0, failed = 0, skipped = 0 }
  for _, e in ipairs(basic.events) do
    local k = e.kind:match("^test_(%a+)$")
    if n[k] then n[k] = n[k] + 1 end
  end
  t:assert_eq(rep.attrs.tests, tostring(n.passed + n.failed + n.skipped))
  t:assert_eq(rep.attrs.failures, tostring(n.failed))
  t:assert_eq(rep.attrs.errors, "0")
  t:assert_eq(rep.attrs.skipped, tostring(n.skipped))
  t:assert_eq(#rep.suites, 3, "a testsuite per file")
  local f = suite(rep, "fail.test.lua")
  t:assert_eq(f.attrs.tests, "7")
  t:assert_eq(f.attrs.failures, "3")
  t:assert_eq(f.attrs.skipped, "3")
  t:assert_eq(#f.cases, 7)
  t:assert(f.attrs.time:match("^%d+%.%d%d%d$"), "seconds with 3 decimals: " .. f.attrs.time)
  t:assert(f.attrs.timestamp:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$"), f.attrs.timestamp)
  t:assert_eq(suite(rep, "todo.test.lua").attrs.skipped, "2")
end)

test("JUnit: a failure has its message, full text, file and line", function(t)
  local f = suite(read_junit(basic_xml), "fail.test.lua")
  local c = case(f, "assert_eq shows both values")
  t:assert_eq(c.attrs.classname, "fail")
  t:assert_eq(c.attrs.line, "2")
  t:assert(c.attrs.file:match("basic/fail%.test%.lua$"), "the path the run opened: " .. c.attrs.file)
  t:assert_eq(c.result.tag, "failure")
  t:assert_eq(c.result.attrs.type, "failure")
  t:assert_eq(c.result.attrs.message, 'fail.test.lua:2: assert_eq failed: lease state: "bound" ~= "expired"')
  c = case(f, "runtime error")
  t:assert_eq(c.attrs.line, "11")
  t:assert_eq(c.result.attrs.message, "fail.test.lua:11: attempt to index a nil value (local 'x')", "the first line")
  t:assert_contains(c.result.text, "stack traceback:", "the whole reason in the body")
  c = case(f, "skipped by meta")
  t:assert_eq(c.result.tag, "skipped")
  t:assert_eq(c.result.attrs.message, "needs hardware")
  t:assert_eq(case(f, "after failures, still runs").result, json.null)
  c = case(suite(read_junit(basic_xml), "pass.test.lua"), "handle")
  t:assert_contains(c.system_out, "a log line\t42", "t:log in system-out")
end)

test("JUnit: a crash, a timeout and a load error are errors, never gone", function(t)
  local rep = read_junit(iso_xml)
  local s = suite(rep, "crash.test.lua")
  t:assert(s, "the crashed file has its testsuite")
  local c = case(s, "<file>")
  t:assert_eq(c.result.tag, "error")
  t:assert_eq(c.result.attrs.type, "crashed")
  t:assert_eq(case(s, "before the crash").result, json.null)
  t:assert_contains(case(s, "exits the runner").result.attrs.message, "exited with status 3")
  t:assert_contains(case(s, "never runs").result.attrs.message, "poisoned state")
  t:assert_eq(s.attrs.errors, "1")
  t:assert_eq(s.attrs.tests, tostring(#s.cases))
  s = suite(rep, "hang.test.lua")
  c = case(s, "<file>")
  t:assert_eq(c.result.attrs.type, "timed_out")
  t:assert_contains(c.result.attrs.message, "timed out after")
  s = suite(rep, "syntax.test.lua")
  c = case(s, "<load>")
  t:assert_eq(c.result.tag, "error")
  t:assert_eq(c.result.attrs.type, "load_error")
  t:assert_eq(c.attrs.line, "3")
  t:assert_eq(suite(rep, "signal.test.lua") ~= nil, true)
end)

test("JUnit: markup and control characters come back as text", function(t)
  local s = suite(read_junit(weird_xml), "weird.test.lua")
  local c = case(s, "markup ]]> <b> & \"q\" 'a'")
  t:assert(c, "the name round trips")
  t:assert_eq(c.attrs.line, "7")
  t:assert_contains(c.result.attrs.message, "broken ]]> \\x01\\x02 ")
  t:assert_contains(c.result.text, "log:\nlog with ]]> and \\x1b[31mcolour\\x1b[0m", "the log in the failure")
  t:assert_contains(c.system_out, "\\x1b[31mcolour", "control characters made visible")
  t:assert_eq(case(s, "skipped with <markup>").result.attrs.message, "reason & <why>")
  t:assert_contains(case(s, "a log of two lines").system_out, "line one\nline two\n")
  t:assert_eq(s.system_out, "file scope \\x01 says hi\n", "a file-scope log is the suite's")
end)

test("--json-summary: one object per file with the original's fields", function(t)
  local files = read_summary(basic_jsonl)
  t:assert_eq(#files, 3)
  t:assert_eq(files[1].path, "fail.test.lua", "discovery order")
  local f = files["fail.test.lua"]
  t:assert_eq(f.status, "failed")
  t:assert_eq(f.passed, false)
  t:assert_eq(f.timeout, "in_time")
  t:assert_eq(f.chunk_error, json.null)
  t:assert_eq(f.duration_ms, math.floor(f.duration_ms), "whole milliseconds")
  t:assert_eq(#f.tests, 7)
  local e = entry(f, "plain failure")
  t:assert_eq(e.status, "failed")
  t:assert_eq(e.message, "fail.test.lua:6: went wrong")
  t:assert_eq(e.location, "fail.test.lua:6")
  t:assert_eq(e.duration_ms, math.floor(e.duration_ms))
  e = entry(f, "skipped inline")
  t:assert_eq(e.status, "skipped")
  t:assert_eq(e.message, "not on this host")
  t:assert_eq(e.duration_ms, json.null)
  t:assert_eq(entry(f, "after failures, still runs").message, json.null)
  t:assert_eq(files["pass.test.lua"].passed, true)
  t:assert_eq(entry(files["pass.test.lua"], "handle").log[1], "a log line\t42")
  t:assert_eq(files["todo.test.lua"].passed, true)
end)

test("--json-summary: crash, timeout, load error", function(t)
  local files = read_summary(iso_jsonl)
  t:assert_eq(files["crash.test.lua"].status, "crashed")
  t:assert_eq(files["crash.test.lua"].passed, false)
  t:assert_eq(files["hang.test.lua"].status, "timed_out")
  t:assert_eq(files["hang.test.lua"].timeout, "timed_out")
  local s = files["syntax.test.lua"]
  t:assert_contains(s.chunk_error, "syntax.test.lua:3:")
  t:assert_eq(#s.tests, 0, "the <load> pseudo-test is the chunk_error, not a test")
  local w = read_summary(weird_jsonl)["weird.test.lua"]
  t:assert_eq(w.log[1], "file scope \1 says hi", "JSON carries control characters escaped")
  t:assert_eq(entry(w, "a log of two lines").log[1], "line one\nline two", "a message stays whole")
end)

test("the reports replace their files whole, leaving nothing beside them", function(t)
  local out = sh("ls -1A " .. pv.q(basic_dir))
  t:assert_eq(out, "junit.xml\nsummary.jsonl\n")
  -- a second run over the same paths replaces them
  local r = pv.run({ "--junit", basic_xml, "--json-summary", basic_jsonl, pv.cases .. "/basic/todo.test.lua" })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(#read_junit(basic_xml).suites, 1)
  t:assert_eq(#read_summary(basic_jsonl), 1)
  t:assert_eq(sh("ls -1A " .. pv.q(basic_dir)), "junit.xml\nsummary.jsonl\n")
end)

test("a run with nothing to run (--rerun-failed after a pass) writes empty reports", function(t)
  local dir, xml = fresh("junit.xml")
  local jsonl, cache = dir .. "/summary.jsonl", dir .. "/cache"
  local todo = pv.cases .. "/basic/todo.test.lua"
  t:assert_eq(pv.run({ "--rerun-failed", "--cache-dir", cache, todo }).code, 0)
  local r = pv.run({ "--rerun-failed", "--cache-dir", cache, "--junit", xml, "--json-summary", jsonl, todo })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_contains(r.stderr, "nothing to run")
  t:assert_eq(schema_error(xml), nil)
  local rep = read_junit(xml)
  t:assert_eq(rep.attrs.tests, "0")
  t:assert_eq(#rep.suites, 0)
  t:assert_eq(pv.slurp(jsonl), "")
end)

test("an interrupted run still writes both reports (SIGTERM, exit 143)", function(t)
  local dir, xml = fresh("junit.xml")
  local jsonl, fifo, ev = dir .. "/summary.jsonl", dir .. "/fifo", dir .. "/ev"
  os.execute("mkfifo " .. pv.q(fifo))
  local out = sh(string.format(
    "PV_SIGNAL_FIFO=%s %s --timeout 280s --save-events %s --junit %s --json-summary %s %s >/dev/null 2>&1 </dev/null & pid=$!; " ..
    "timeout 240 sh -c 'read l < \"$1\"' sh %s; ready=$?; kill -TERM $pid; wait $pid; echo \"$? $ready\"",
    pv.q(fifo), pv.q(pv.bin), pv.q(ev), pv.q(xml), pv.q(jsonl), pv.q(pv.cases .. "/signals/block"), pv.q(fifo)))
  local code, ready = out:match("(%d+) (%d+)")
  t:assert_eq(ready, "0", "the blocking test never started")
  t:assert_eq(code, "143")
  t:assert_eq(schema_error(xml), nil)
  local s = suite(read_junit(xml), "block.test.lua")
  t:assert_eq(case(s, "before").result, json.null)
  local c = case(s, "blocks")
  t:assert_eq(c.result.tag, "skipped")
  t:assert_contains(c.result.attrs.message, "interrupted by SIGTERM")
  local f = read_summary(jsonl)["block.test.lua"]
  t:assert_eq(f.status, "failed")
  t:assert_contains(entry(f, "after").message, "interrupted by SIGTERM")
end)

test("bad input: one clear line, exit 2, nothing run", function(t)
  local dir, xml = fresh("same.xml")
  local cases = {
    { { "--junit" }, "--junit needs a value" },
    { { "--json-summary" }, "--json-summary needs a value" },
    { { "--junit", "/nonexistent/dir/r.xml", "." }, "directory /nonexistent/dir does not exist" },
    { { "--json-summary", "/nonexistent/s.jsonl", "." }, "directory /nonexistent does not exist" },
    { { "--junit", dir, "." }, "is a directory" },
    { { "--junit", dir .. "/", "." }, "--junit needs a file path" },
    { { "--junit", "", "." }, "--junit needs a file path" },
    { { "--junit", "--json-summary", "x", "." }, "looks like an option" },
    { { "--junit", xml, "--json-summary", xml, "." }, "--junit and --json-summary both name" },
    { { "--junit", xml, "--json-summary", dir .. "/../" .. dir:match("[^/]+$") .. "/same.xml", "." }, "both name" },
    { { "list", "--junit", xml, ".", no_save = true }, "--junit goes with a run" },
    { { "fixture", "list", "--json-summary", xml }, "--json-summary goes with a run" },
  }
  for _, c in ipairs(cases) do
    local r = pv.run(c[1])
    local what = table.concat(c[1], " ")
    t:assert_eq(r.code, 2, what .. " -> " .. r.stderr)
    t:assert_contains(r.stderr, c[2], what)
    local _, lines = r.stderr:gsub("\n", "")
    t:assert_eq(lines, 1, what .. ": one line: " .. r.stderr)
    if not c[1].no_save then t:assert_eq(#r.events, 0, what .. ": nothing ran") end
  end
  t:assert_eq(sh("ls -1A " .. pv.q(dir)), "", "no report written")
  -- --save-events and a report on one file
  local r = pv.run({ "--save-events", xml, "--junit", xml, ".", no_save = true })
  t:assert_eq(r.code, 2, r.stderr)
  t:assert_contains(r.stderr, "--junit and --save-events both name")
  t:assert_eq(select(2, r.stderr:gsub("\n", "")), 1, r.stderr)
end)
