-- vm:run without a timeout of its own is bounded by the test's meta.timeout.
local v = provium:vm("s", "linux")
v:boot()

test("sleeps past its test timeout", { timeout = "3s" }, function(t)
  v:run("sleep 60")
end)

test("the VM is still usable afterwards", function(t)
  t:assert_eq(v:run("echo hi").stdout, "hi\n")
end)
