test("busy loop with a test timeout", { timeout = "300ms" }, function(t)
  while true do end
end)
test("next test still runs", function(t) t:assert(true) end)
