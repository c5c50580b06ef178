-- A claim raises the Lua heap limit of the file to the claimed memory.
provium:claim{ memory = "400M" }
test("uses 300 MiB under a 400M claim", function(t)
  local keep = {}
  for i = 1, 300 do keep[i] = string.rep("x", 1 << 20) .. i end
  t:assert_eq(#keep, 300)
end)
