-- arrays count as levels too
local t = {}
for _ = 1, 200 do t = { t } end
test("meta of nested arrays", { a = t }, function(t) end)
