-- provium shell shell.test.lua --at first: the prompt after "first", with
-- the VM it left; "second" runs after the prompt ends.
local vm = provium:vm("box", "linux")

test("first", function(t)
  vm:boot()
  vm:write_file("/tmp/left", "by first")
end)

test("second", function(t)
  t:assert_eq(vm:read_file("/tmp/left"), "by first")
  t:log("second ran")
end)
