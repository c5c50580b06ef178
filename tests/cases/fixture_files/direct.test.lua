-- push_file and depends_on_file outside fixtures: relative to this file.
local v = provium:vm("d", "linux")
v:boot()

test("push_file copies a host file, its mode kept unless given", function(t)
  v:push_file("data/payload.txt", "/tmp/p")
  t:assert_eq(v:read_file("/tmp/p"), io.open(provium:depends_on_file("data/payload.txt")):read("a"))
  t:assert_eq(v:run("stat -c %a /tmp/p").stdout, "644\n")
  local big = os.tmpname()
  local f = io.open(big, "wb")
  f:write(string.rep("0123456789abcdef", 2 * 1024 * 1024 + 7)) -- 32 MiB + 112 bytes: chunks
  f:close()
  v:push_file(big, "/tmp/big", { mode = "0755" })
  local want = io.popen("md5sum < " .. big):read("l")
  os.remove(big)
  t:assert_eq(v:run("stat -c '%a %s' /tmp/big").stdout, "755 " .. (16 * (2 * 1024 * 1024 + 7)) .. "\n")
  t:assert_eq(v:run("md5sum < /tmp/big").stdout, want .. "\n")
end)

test("missing host files are errors naming the resolved path", function(t)
  t:assert_contains(t:assert_raises(function() v:push_file("data/nope", "/tmp/x") end),
    "fixture_files/data/nope: No such file or directory")
  t:assert_contains(t:assert_raises(function() provium:depends_on_file("data") end), "is not a regular file")
  t:assert_contains(t:assert_raises(function() v:push_file("data/dep.txt", "/tmp/x", { mod = 1 }) end),
    'vm:push_file options: unknown key "mod"')
end)
