test("fine", function(t) end)
test("broken", function(t)
  if then
end)
