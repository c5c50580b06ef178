-- A test that allocates without bound fails; the file goes on.
test("allocates without bound", function(t)
  local keep = {}
  for i = 1, 1e6 do keep[i] = string.rep("x", 1 << 20) .. i end
end)

test("runs after the hog", function(t)
  local s = string.rep("y", 8 << 20)
  t:assert_eq(#s, 8 << 20)
end)

test("the limit message can be caught by pcall", function(t)
  local ok, e = pcall(function()
    local keep = {}
    for i = 1, 1e6 do keep[i] = string.rep("x", 1 << 20) .. i end
  end)
  t:assert(not ok)
  t:assert_contains(tostring(e), "Lua memory limit exceeded")
end)

local hoard = {}
test("keeps a hoard in a global", function(t)
  for i = 1, 1e6 do hoard[i] = string.rep("z", 1 << 20) .. i end
end)

test("runs after the hoard", function(t)
  local s = string.rep("y", 64 << 20)
end)
