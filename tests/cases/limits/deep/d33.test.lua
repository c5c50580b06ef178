test("meta 33 deep", require("nest")(33), function(t) end)
