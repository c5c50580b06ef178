-- A real Linux guest (the built-in `linux` profile; under TCG a boot takes a
-- few seconds).
local guest = provium:vm("guest", "linux", { memory = "256M" })
guest:boot()

test("the guest runs commands", { spec = "example/vm" }, function(t)
  local r = guest:run("uname -s"):assert_ok()
  t:assert_eq(r.stdout, "Linux\n")
end)

test("files go in and out byte for byte", { spec = "example/vm" }, function(t)
  local data = "\0\1\2 binary \255"
  guest:write_file("/tmp/data.bin", data)
  t:assert_eq(guest:read_file("/tmp/data.bin"), data)
  t:assert_eq(guest:stat("/tmp/data.bin").size, #data)
end)

test("a background process", { spec = "example/vm" }, function(t)
  local p = guest:run_async("read x; echo got $x")
  p:stdin_write("42\n")
  t:assert_eq(p:wait("10s").stdout, "got 42\n")
end)
