test("free metadata keys pass", { spec = "net/dhcp", owner = "team", timeout = "30s", tags = "x" }, function(t) end)
