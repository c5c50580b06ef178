-- One file crashing, hanging or failing to load never takes the run down.
local pv = require("lib.pv")

local r = pv.run({ pv.cases .. "/isolation" })
local ev = r.events

test("guarantees hold through crashes and timeouts", function(t)
  t:assert_eq(r.code, 1, r.stderr)
  t:assert_eq(pv.check_guarantees(ev), nil)
end)

test("os.exit in a test: crashed, rest poisoned", function(t)
  t:assert_eq(pv.file_status(ev, "crash.test.lua"), "crashed")
  t:assert_eq(pv.outcome(ev, "crash.test.lua", "before the crash"), "passed")
  local o, p = pv.outcome(ev, "crash.test.lua", "exits the runner")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, "exited with status 3")
  o, p = pv.outcome(ev, "crash.test.lua", "never runs")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, "poisoned state")
  t:assert_eq(p.meta.spec, "x")
end)

test("SIGKILL of the runner", function(t)
  t:assert_eq(pv.file_status(ev, "signal.test.lua"), "crashed")
  local o, p = pv.outcome(ev, "signal.test.lua", "kills its own runner")
  t:assert_contains(p.reason, "SIGKILL")
  t:assert_eq(pv.outcome(ev, "signal.test.lua", "poisoned"), "failed")
end)

test("file timeout kills a busy loop", function(t)
  t:assert_eq(pv.file_status(ev, "hang.test.lua"), "timed_out")
  local o, p = pv.outcome(ev, "hang.test.lua", "spins forever")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, "timed out after 1s")
  t:assert_eq(pv.outcome(ev, "hang.test.lua", "after the hang"), "failed")
  for _, e in ipairs(pv.of(ev, "file_completed", "hang.test.lua")) do
    t:assert(e.payload.duration_ns < 5e9, "killed promptly")
  end
end)

test("test timeout interrupts Lua and the file goes on", function(t)
  local o, p = pv.outcome(ev, "test_timeout.test.lua", "busy loop with a test timeout")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, "timed out after 300ms")
  t:assert_eq(pv.outcome(ev, "test_timeout.test.lua", "next test still runs"), "passed")
  t:assert_eq(pv.file_status(ev, "test_timeout.test.lua"), "failed")
end)

test("load errors: one <load> test with file:line", function(t)
  local cases = {
    ["syntax.test.lua"] = "syntax.test.lua:3:",
    ["dup.test.lua"] = 'duplicate test name "same"',
    ["scope_error.test.lua"] = "scope_error.test.lua:3:",
  }
  for file, needle in pairs(cases) do
    local o, p = pv.outcome(ev, file, "<load>")
    t:assert_eq(o, "failed", file)
    t:assert_contains(p.reason, needle)
    t:assert_eq(pv.file_status(ev, file), "failed", file)
    t:assert_eq(#pv.of(ev, "test_started", file), 1, file .. " reports only <load>")
  end
end)
