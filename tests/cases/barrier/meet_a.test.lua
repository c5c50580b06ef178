-- With meet_b.test.lua: two files of one run meet at a barrier, twice (the
-- barrier resets for the next round). Each leaves a mark before it arrives
-- and finds the other's after: they did meet. tests/suite/barrier.test.lua
local lib = require("lib.marks")

test("meets b twice", function(t)
  for round = 1, 2 do
    lib.mark("a", round)
    t:assert_eq(provium:barrier("meet", 2, "120s"), true, "round " .. round)
    t:assert(lib.marked("b", round), "b arrived before the barrier let a through (round " .. round .. ")")
  end
end)
