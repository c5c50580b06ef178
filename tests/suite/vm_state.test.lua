-- The VM state machine seen from outside: exactly one vm_shutdown per
-- vm_spawned whatever ends a VM (tests/cases/vm/killed.test.lua).
local pv = require("lib.pv")

test("a VM whose QEMU was killed shuts down exactly once", function(t)
  local r = pv.run({ pv.cases .. "/vm/killed.test.lua" })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  local spawned, down = {}, {}
  for _, e in ipairs(pv.of(r.events, "vm_spawned")) do
    spawned[e.payload.vm_name] = (spawned[e.payload.vm_name] or 0) + 1
  end
  for _, e in ipairs(pv.of(r.events, "vm_shutdown")) do
    down[e.payload.vm_name] = (down[e.payload.vm_name] or 0) + 1
  end
  t:assert_eq(spawned, { victim = 1, quiet = 1 })
  t:assert_eq(down, { victim = 1, quiet = 1 }, "one vm_shutdown per vm_spawned")
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)

test("errors unwinding through VM ops leave one vm_shutdown per VM", function(t)
  local r = pv.run({ pv.cases .. "/vm/unwind.test.lua" })
  t:assert_eq(r.code, 1, r.stdout .. r.stderr)
  local count = function(kind)
    local n = {}
    for _, e in ipairs(pv.of(r.events, kind)) do n[e.payload.vm_name] = (n[e.payload.vm_name] or 0) + 1 end
    return n
  end
  t:assert_eq(count("vm_spawned"), { kept = 1, inner = 1, closed = 1 })
  t:assert_eq(count("vm_shutdown"), { kept = 1, inner = 1, closed = 1 }, "one vm_shutdown per vm_spawned")
  local outcome, closed_down, failed_at = {}, nil, nil
  for i, e in ipairs(r.events) do
    if e.kind == "test_passed" or e.kind == "test_failed" then
      outcome[e.payload.name] = e.kind
      if e.kind == "test_failed" then t:assert_contains(e.payload.reason, "boom from __tostring") end
      if e.payload.name == "an error inside a to-be-closed VM's block" then failed_at = i end
    elseif e.kind == "vm_shutdown" and e.payload.vm_name == "closed" then
      closed_down = i
    end
  end
  t:assert_eq(outcome, {
    ["an error inside vm:run of the test's VM"] = "test_failed",
    ["an error inside vm:run of the file's VM leaves it usable"] = "test_passed",
    ["an error inside a to-be-closed VM's block"] = "test_failed",
  })
  t:assert(closed_down and failed_at and closed_down < failed_at, "the closed VM ends before its test's result")
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)
