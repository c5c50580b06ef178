test("before the crash", function(t) end)
test("exits the runner", function(t) os.exit(3) end)
test("never runs", { spec = "x" }, function(t) end)
