-- A file that declares what it needs from the pool before it is dispatched.
provium:claim{ memory = "256M", cpus = 1 }
provium.timeout = "30s"

test("runs inside its claim", { spec = "example/pool" }, function(t)
  t:log("this line shows up only if the test fails")
  t:assert(true)
end)
