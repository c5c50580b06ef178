-- Resumes the seeded fixture (examples/suite/seeded.fixture.lua) instead of
-- booting and setting up a VM again; every test starts from that state.
local box = provium.vm_fixture("seeded")
provium.reset_between_tests = true

test("the fixture's files are there", { spec = "example/fixture" }, function(t)
  t:assert_eq(box:read_file("/srv/data/greeting"), "hello from the fixture\n")
  box:run("rm /srv/data/greeting"):assert_ok() -- undone before the next test
end)

test("its daemon runs on, and the previous test's changes are gone", { spec = "example/fixture" }, function(t)
  t:assert_eq(box:read_file("/srv/data/greeting"), "hello from the fixture\n")
  local first = box:read_file("/tmp/heartbeat")
  wait_until(function() return box:read_file("/tmp/heartbeat") ~= first end,
    { timeout = "10s", desc = "the heartbeat daemon to tick" })
end)
