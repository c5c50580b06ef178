-- The Lua test API, through the real binary and the real event stream.
local pv = require("lib.pv")

local r = pv.run({ pv.cases .. "/basic" })
local ev = r.events

test("exit code and ordering guarantees", function(t)
  t:assert_eq(r.code, 1, "a failing test makes the run fail: " .. r.stderr)
  t:assert_eq(pv.check_guarantees(ev), nil)
  t:assert_eq(#pv.of(ev, "file_discovered"), 3)
end)

test("passing assertions", function(t)
  for _, name in ipairs({ "assertions", "handle", "wait_until returns the first truthy value",
                          "require finds helpers under the root" }) do
    local o, p = pv.outcome(ev, "pass.test.lua", name)
    t:assert_eq(o, "passed", name .. ": " .. tostring(p and p.reason))
  end
  t:assert_eq(pv.file_status(ev, "pass.test.lua"), "passed")
end)

test("meta passes through, bin stays bin", function(t)
  local _, p = pv.outcome(ev, "pass.test.lua", "handle")
  t:assert_eq(p.meta.owner, "team-a")
  t:assert_eq(p.meta.weight, 0.5)
  t:assert_eq(p.meta.n, 7)
  t:assert_eq(math.type(p.meta.n), "integer")
  t:assert_eq(p.meta.flag, false)
  t:assert_eq(p.meta.raw, { bytes = "\xff\xfe" })
  t:assert_eq(p.meta.nested, { deep = { 1, "two" } })
  local _, a = pv.outcome(ev, "pass.test.lua", "assertions")
  t:assert_eq(a.meta.tags, { "core", "fast" })
end)

test("failure reasons name the values and file:line", function(t)
  local o, p = pv.outcome(ev, "fail.test.lua", "assert_eq shows both values")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, "fail.test.lua:2:")
  t:assert_contains(p.reason, "lease state")
  t:assert_contains(p.reason, '"bound"')
  t:assert_contains(p.reason, '"expired"')
  o, p = pv.outcome(ev, "fail.test.lua", "plain failure")
  t:assert_contains(p.reason, "fail.test.lua:6: went wrong")
  o, p = pv.outcome(ev, "fail.test.lua", "runtime error")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, "attempt to index")
  t:assert_contains(p.reason, "stack traceback")
end)

test("skips: inline, meta, slow, todo", function(t)
  local o, p = pv.outcome(ev, "fail.test.lua", "skipped inline")
  t:assert_eq({ o, p.reason }, { "skipped", "not on this host" })
  o, p = pv.outcome(ev, "fail.test.lua", "skipped by meta")
  t:assert_eq({ o, p.reason }, { "skipped", "needs hardware" })
  o, p = pv.outcome(ev, "fail.test.lua", "slow one")
  t:assert_eq(o, "skipped")
  t:assert_contains(p.reason, "--include-slow")
  t:assert_eq(pv.outcome(ev, "fail.test.lua", "after failures, still runs"), "passed")
  for _, n in ipairs({ "one", "two" }) do
    o, p = pv.outcome(ev, "todo.test.lua", n)
    t:assert_eq({ o, p.reason }, { "skipped", "waiting for the parser rewrite" })
  end
  t:assert_eq(pv.file_status(ev, "todo.test.lua"), "passed")
end)

test("human output", function(t)
  t:assert_contains(r.stdout, "fail.test.lua")
  t:assert_contains(r.stdout, "went wrong")
  t:assert(not r.stdout:find("a log line", 1, true), "logs of passing tests stay hidden")
end)
