-- A host directory in the guest: this suite's own directory, read-only over
-- virtio-fs (relative host paths resolve against this file).
local guest = provium:vm("reader", "linux", { share = { { host = ".", guest = "/suite", readonly = true } } })
guest:boot()

test("the guest reads the host's files", { spec = "example/share" }, function(t)
  local r = guest:run("grep -c 'example/share' /suite/share.test.lua"):assert_ok()
  t:assert(tonumber(r.stdout) >= 1, "the guest sees this very file")
  t:assert(not guest:run("touch /suite/x"):ok(), "readonly: the guest cannot write")
end)
