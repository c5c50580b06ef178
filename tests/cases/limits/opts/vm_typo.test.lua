-- the issue's case: a typo in the VM options fails before anything boots
local web = provium:vm("web", "linux", { memroy = "128M" })
web:boot()
test("never registered", function(t) end)
