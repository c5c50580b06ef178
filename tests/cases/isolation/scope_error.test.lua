local config = nil
test("never registered", function(t) end)
local port = config.port
