test("always", function(t) end)
