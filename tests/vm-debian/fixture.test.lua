-- A fixture of a Debian profile: resumed with the root image attached again
-- and the overlay's writes of the build (docs/images.md).
local v = provium.vm_fixture("seeded")

test("a resumed Debian fixture has its writes and its packages", function(t)
  t:assert_eq(v:run("cat /var/lib/app/state"):assert_ok().stdout, "seeded\n")
  t:assert_eq(v:run("test -x /usr/bin/nc.openbsd && echo 3 > /proc/sys/vm/drop_caches && " ..
    "nc.openbsd -h 2>&1 | head -c 40 | wc -c"):assert_ok().stdout, "40\n")
end)
