test("net test", { tags = { "net" } }, function(t) end)
test("disk test", { tags = { "disk" } }, function(t) end)
test("untagged", function(t) end)
test("slow net", { tags = { "net" }, slow = true }, function(t) end)
