-- An example suite: what a Provium test file looks like (host-side only for
-- now; VMs arrive with the VM layer).
test("arithmetic still works", { spec = "example/basics", tags = { "fast" } }, function(t)
  t:assert_eq(6 * 7, 42)
end)

test("strings and tables", { spec = "example/basics" }, function(t)
  t:assert_contains("provium runs tests in VMs", "VMs")
  t:assert_eq({ 1, { two = 2 } }, { 1, { two = 2 } })
end)

test("waiting for a condition", { spec = "example/waiting" }, function(t)
  local polls = 0
  local v = wait_until(function() polls = polls + 1; return polls == 3 and "ready" end,
                       { timeout = "2s", interval = "10ms", desc = "the third poll" })
  t:assert_eq(v, "ready")
end)

test("not for this host", { spec = "example/skips", skip = "needs an aarch64 host" }, function(t) end)
