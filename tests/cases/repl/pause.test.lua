-- t:pause(): a prompt with --debug (its vars and the file's VMs), a line in
-- the test's log without; the test's timeout does not run while it waits.
-- PAUSE_FAIL=1 fails the test after it, to show its log.
test("pauses", { timeout = "3s" }, function(t)
  local answer = 42
  t:pause({ answer = answer, nested = { b = 2, a = { 1, 2, 3 } } }, "look at answer")
  if os.getenv("PAUSE_FAIL") then error("failed after the pause") end
end)
