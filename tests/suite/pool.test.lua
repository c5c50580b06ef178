-- The resource pool: reservations, blocking, claims.
local pv = require("lib.pv")

test("files wait for the pool and claims pair up", function(t)
  local r = pv.run({ "--mem", "560M", "--psi-threshold", "0", "--filter", "small_", pv.cases .. "/pool" })
  local ev = r.events
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(pv.check_guarantees(ev), nil)
  local blocked = pv.of(ev, "file_blocked")
  t:assert(#blocked >= 1, "with room for two files, the third waits")
  t:assert_eq(blocked[1].payload.reason, "pool_full")
  t:assert_eq(blocked[1].payload.waiting_for, { memory_bytes = (200 + 50) * 1024 * 1024, cpus = 1 })
  local d = pv.of(ev, "file_dispatched")
  t:assert_eq(#d, 3)
  t:assert_eq(d[1].payload.reservation.memory_bytes, 250 * 1024 * 1024)
  t:assert_eq(#pv.of(ev, "claim_acquired"), 3)
  t:assert_eq(#pv.of(ev, "claim_released"), 3)
  local disc = pv.of(ev, "file_discovered")
  t:assert_eq(disc[1].payload.declared_claim, { memory_bytes = 200 * 1024 * 1024, cpus = 1 })
end)

test("a claim larger than the pool fails the file at once", function(t)
  local r = pv.run({ "--filter", "huge", pv.cases .. "/pool" })
  t:assert_eq(r.code, 1)
  local o, p = pv.outcome(r.events, "huge.test.lua", "<claim>")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, "more than the whole pool")
  t:assert_eq(pv.file_status(r.events, "huge.test.lua"), "failed")
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)

test("a claim made at run time is acquired, once", function(t)
  local r = pv.run({ "--filter", "runtime_claim", pv.cases .. "/pool" })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  local disc = pv.of(r.events, "file_discovered")
  t:assert_eq(disc[1].nils, { "declared_claim" })
  local a = pv.of(r.events, "claim_acquired")
  t:assert_eq(#a, 1)
  t:assert_eq(a[1].payload.amount, { memory_bytes = 64 * 1024 * 1024, cpus = 0 })
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)

test("cpu pressure alone does not pause dispatching (cpus are the pool's)", function(t)
  local dir = pv.tmp("psicpu")
  os.execute("mkdir -p " .. pv.q(dir))
  local files = {
    memory = "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    cpu = "some avg10=95.00 avg60=90.00 avg300=80.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
  }
  for f, text in pairs(files) do
    local h = io.open(dir .. "/" .. f, "w")
    h:write(text)
    h:close()
  end
  local r = pv.run({ "--filter", "small_", pv.cases .. "/pool", env = "PROVIUM_PSI_DIR=" .. pv.q(dir) })
  t:assert_eq(r.code, 0, r.stderr)
  for _, b in ipairs(pv.of(r.events, "file_blocked")) do
    t:assert(b.payload.reason ~= "psi_pressure", "blocked on cpu pressure")
  end
end)

test("host memory pressure pauses dispatching, never the only file", function(t)
  local dir = pv.tmp("psi")
  os.execute("mkdir -p " .. pv.q(dir))
  for _, f in ipairs({ "memory", "cpu" }) do
    local h = io.open(dir .. "/" .. f, "w")
    h:write("some avg10=55.00 avg60=20.00 avg300=5.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    h:close()
  end
  local r = pv.run({ "--filter", "small_", pv.cases .. "/pool", env = "PROVIUM_PSI_DIR=" .. pv.q(dir) })
  t:assert_eq(r.code, 0, r.stderr)
  local blocked = pv.of(r.events, "file_blocked")
  t:assert(#blocked >= 1)
  t:assert_eq(blocked[1].payload.reason, "psi_pressure")
  -- one file at a time: each dispatch follows the previous completion
  local running, max = 0, 0
  for _, e in ipairs(r.events) do
    if e.kind == "file_dispatched" then running = running + 1 end
    if e.kind == "file_completed" then running = running - 1 end
    if running > max then max = running end
  end
  t:assert_eq(max, 1)
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)
