-- One file on its own: what a barrier does when nobody else comes.
-- tests/suite/barrier.test.lua

test("a barrier that never fills returns false after its timeout", function(t)
  t:assert_eq(provium:barrier("never", 2, 0.3), false)
  -- the arrival was taken back: the next caller is alone again
  t:assert_eq(provium:barrier("never", 2, "300ms"), false)
end)

test("count 1 returns true at once, every time", function(t)
  t:assert_eq(provium:barrier("solo", 1), true)
  t:assert_eq(provium:barrier("solo", 1, 0), true)
end)

test("a different count for the same name is an error", function(t)
  t:assert_eq(provium:barrier("fixed", 1), true)
  local err = t:assert_raises(function() provium:barrier("fixed", 3, 0.1) end)
  t:assert_contains(err, 'provium:barrier("fixed", 3): the first call for this name fixed its count at 1')
end)

test("bad arguments are clear errors", function(t)
  local cases = {
    { { "", 1 }, "the name must not be empty" },
    { { "a/b", 1 }, 'bad name "a/b"' },
    { { "..", 1 }, 'bad name ".."' },
    { { "x..y", 1 }, 'bad name "x..y"' },
    { { 5, 1 }, "the name must be a string, got number" },
    { { "n", 0 }, 'provium:barrier("n"): count must be an integer from 1 to 100000, got 0' },
    { { "n", 1.5 }, "count must be an integer from 1 to 100000, got 1.5" },
    { { "n" }, "count must be an integer from 1 to 100000, got nothing" },
    { { "n", 1, "soon" }, 'provium:barrier("n") timeout' },
    { { "n", 1, -1 }, 'provium:barrier("n") timeout' },
    { { "n", 1, {} }, 'provium:barrier("n") timeout must be a duration' },
  }
  for i, c in ipairs(cases) do
    local err = t:assert_raises(function() provium:barrier(table.unpack(c[1])) end, "case " .. i)
    t:assert_contains(err, c[2], "case " .. i)
  end
end)

test("the test's timeout cuts a barrier's wait short", { timeout = "300ms" }, function(t)
  provium:barrier("cut", 2, "60s")
end)
