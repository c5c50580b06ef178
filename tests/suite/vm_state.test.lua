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
