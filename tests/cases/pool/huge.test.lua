provium:claim{ memory = "100T", cpus = 1 }
test("needs more than any host", function(t) end)
