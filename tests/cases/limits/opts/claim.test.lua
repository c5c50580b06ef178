provium:claim{ memory = "64M", cpu = 1 }
test("never registered", function(t) end)
