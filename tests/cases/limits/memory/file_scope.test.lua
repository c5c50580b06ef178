-- the limit holds at file scope too: a load failure, not a dead runner
local keep = {}
for i = 1, 1e6 do keep[i] = string.rep("x", 1 << 20) .. i end
test("never registered", function(t) end)
