-- Metadata nested as deep as the docs allow (32 levels) is fine.
local nest = require("nest")

test("meta 11 deep", nest(11, { x = 1 }), function(t) t:assert_eq(t.meta.d.d.d.d.d.d.d.d.d.d.d.x, 1) end)
test("meta 32 deep", nest(32), function(t) end)

test("assert_eq on tables 200 deep", function(t)
  t:assert_eq(nest(200, { x = 1 }), nest(200, { x = 1 }))
  t:assert_neq(nest(200, { x = 1 }), nest(200, { x = 2 }))
end)

test("assert_contains with deep elements", function(t)
  t:assert_contains({ nest(50, { x = 1 }) }, nest(50, { x = 1 }))
end)

test("assert_eq on tables 1000 deep is an error, not a crash", function(t)
  t:assert_eq(nest(1000), nest(1000))
end)

test("failure message of a deep table", function(t)
  t:assert_eq(nest(150, { x = 1 }), nest(150, { x = 2 }))
end)

test("failure message of wide tables", function(t)
  local w = {}
  for i = 1, 20 do w["k" .. i] = string.rep("x", 390) end
  t:assert_eq(w, { n = { string.rep("y", 390), { string.rep("z", 390) } } })
end)
