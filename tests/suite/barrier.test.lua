-- provium:barrier: files of one run meet at a name (tests/cases/barrier,
-- tests/cases/barrier_dead). The nested runs get room for both files at once
-- (--cpus 2, no PSI pause): files meeting at a barrier must run together.
local pv = require("lib.pv")

local function marks(name)
  local dir = pv.tmp(name)
  os.execute("mkdir -p " .. pv.q(dir))
  return "PROVIUM_BARRIER_MARKS=" .. pv.q(dir)
end

test("two files meet at a barrier, twice, and both pass", function(t)
  local r = pv.run({ "--cpus", "2", "--psi-threshold", "0", "--filter", "meet_",
    pv.cases .. "/barrier", env = marks("meet") })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.outcome(r.events, "meet_a.test.lua", "meets b twice"), "passed", r.stdout)
  t:assert_eq(pv.outcome(r.events, "meet_b.test.lua", "meets a twice"), "passed", r.stdout)
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)

test("alone: timeout, count 1, a count mismatch, bad arguments, the test's timeout", function(t)
  local r = pv.run({ pv.cases .. "/barrier/alone.test.lua" })
  t:assert_eq(r.code, 1, r.stdout .. r.stderr)
  local f = "alone.test.lua"
  t:assert_eq(pv.outcome(r.events, f, "a barrier that never fills returns false after its timeout"), "passed", r.stdout)
  t:assert_eq(pv.outcome(r.events, f, "count 1 returns true at once, every time"), "passed", r.stdout)
  t:assert_eq(pv.outcome(r.events, f, "a different count for the same name is an error"), "passed", r.stdout)
  t:assert_eq(pv.outcome(r.events, f, "bad arguments are clear errors"), "passed", r.stdout)
  local o, p = pv.outcome(r.events, f, "the test's timeout cuts a barrier's wait short")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, 'test timed out after 300ms (meta.timeout) during provium:barrier("cut")')
end)

test("a caller whose runner died does not count", function(t)
  local r = pv.run({ "--cpus", "2", "--psi-threshold", "0", pv.cases .. "/barrier_dead", env = marks("dead") })
  t:assert_eq(pv.file_status(r.events, "dies.test.lua"), "timed_out", r.stdout)
  t:assert_eq(pv.outcome(r.events, "after.test.lua", "a dead caller's arrival does not count"), "passed", r.stdout)
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)
