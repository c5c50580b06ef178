-- Driven by tests/suite/bridges.test.lua: captures started without a path
-- are kept when a test that wrote them fails, and only then.
local lan = provium:bridge("lan", {})
local whole_file = lan:capture() -- written during every test

test("passes with its own capture", function(t)
  lan:capture()
end)

test("fails with its own capture", function(t)
  lan:capture()
  t:assert(false, "on purpose")
end)

test("passes after", function(t)
  local dir = os.getenv("PROVIUM_CAPTURE_DIR")
  t:assert_eq(whole_file:path():sub(1, #dir), dir, "kept: its path moved")
end)
