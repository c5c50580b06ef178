local mem = "64" .. "M"  -- not a literal: claimed at run time
provium:claim{ memory = mem }
test("claimed at run time", function(t)
  t:assert_raises(function() provium:claim{ memory = "1M" } end)
end)
