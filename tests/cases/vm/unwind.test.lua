-- Errors that unwind through C in the middle of a VM op (a value whose
-- __tostring raises while vm:run packs its argv): every VM still ends with
-- exactly one vm_shutdown, a to-be-closed VM closes during the unwind, and the
-- file's VM stays usable. Run by tests/suite/vm_state.test.lua.
provium:claim{ memory = "456M", cpus = 2 }

local kept = provium:vm("kept", "linux", { memory = "128M" })
kept:boot()
local bad = setmetatable({}, { __tostring = function() error("boom from __tostring") end })

test("an error inside vm:run of the test's VM", function(t)
  local v = provium:vm("inner", "linux", { memory = "128M" })
  v:boot()
  v:run({ "echo", bad })
end)

test("an error inside vm:run of the file's VM leaves it usable", function(t)
  t:assert_raises(function() kept:run({ "echo", bad }) end)
  t:assert_eq(kept:run("echo ok").stdout, "ok\n")
end)

test("an error inside a to-be-closed VM's block", function(t)
  local v <close> = provium:vm("closed", "linux", { memory = "128M" })
  v:boot()
  v:run({ "echo", bad })
end)
