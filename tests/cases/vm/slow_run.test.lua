-- vm:run and p:wait without a timeout of their own are bounded by the test's
-- meta.timeout.
local v = provium:vm("s", "linux")
v:boot()

test("sleeps past its test timeout", { timeout = "3s" }, function(t)
  v:run("sleep 60")
end)

test("waits past its test timeout", { timeout = "3s" }, function(t)
  v:run_async("sleep 60"):wait()
end)

test("the VM is still usable afterwards", function(t)
  t:assert_eq(v:run("echo hi").stdout, "hi\n")
end)
