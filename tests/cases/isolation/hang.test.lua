provium.timeout = "1s"
test("spins forever", function(t)
  while true do end
end)
test("after the hang", function(t) end)
