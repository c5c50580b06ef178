-- Two resumes of the data fixture in one file: each has the fixture's disk
-- contents, and each one's writes are its own.
local a = provium.vm_fixture("data", { name = "a" })
local b = provium.vm_fixture("data", { name = "b" })

test("both resumes have the fixture's disk, mounted as it was", function(t)
  for _, v in ipairs({ a, b }) do
    t:assert_eq(v:run("cat /mnt/d/state"):assert_ok().stdout, "seeded\n")
    v:run("echo 3 > /proc/sys/vm/drop_caches && cd /mnt/d && md5sum -c sum"):assert_ok()
    t:assert_eq(v:disk("data"):size(), 256 * 1024 * 1024)
  end
end)

test("each copy is private: a's writes are not b's", function(t)
  a:run("echo a-was-here > /mnt/d/state && sync"):assert_ok()
  b:run("echo 3 > /proc/sys/vm/drop_caches"):assert_ok()
  t:assert_eq(b:run("cat /mnt/d/state"):assert_ok().stdout, "seeded\n")
  t:assert(a:disk("data"):path() ~= b:disk("data"):path(), "two files")
end)

test("a resumed disk has faults and power cuts like any other", function(t)
  local d = b:disk("data")
  b:run("echo synced > /mnt/d/x && sync /mnt/d/x /mnt/d"):assert_ok()
  b:run("echo lost > /mnt/d/y"):assert_ok()
  d:power_cut()
  b:boot()
  b:run("mkdir -p /mnt/d && mount " .. b:disk("data"):device() .. " /mnt/d"):assert_ok()
  t:assert_eq(b:run("cat /mnt/d/x"):assert_ok().stdout, "synced\n")
  t:assert_eq(b:run("test -e /mnt/d/y"):ok(), false)
end)
