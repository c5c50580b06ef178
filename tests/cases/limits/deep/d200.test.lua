test("meta 200 deep", require("nest")(200), function(t) end)
