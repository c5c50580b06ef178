-- VM tests of the built-in host profile: the provium kernel with the host's
-- / read-only under a tmpfs overlay (docs/lua-api.md, "The host profile").
local h = provium:vm("h", "host")
h:boot()

test("the host's tools run in the guest", function(t)
  t:assert_eq(h:run("/usr/bin/python3 -c 'print(1)'"):assert_ok().stdout, "1\n")
  -- the guest's own kernel, not the host's
  t:assert_contains(h:run("uname -r"):assert_ok().stdout, "cloud")
end)

test("writes go to the guest's overlay, never to the host", function(t)
  local marker = "/etc/provium-host-profile-" .. tostring(os.time())
  h:run("echo guest > " .. marker):assert_ok()
  t:assert_eq(h:run("cat " .. marker):assert_ok().stdout, "guest\n")
  t:assert_eq(io.open(marker), nil, "the host's / is untouched")
end)

test("/proc, /sys, /dev, /tmp, /run and /home are the guest's own", function(t)
  local m = h:run("cat /proc/mounts"):assert_ok().stdout
  t:assert_contains(m, "overlay / overlay ")
  for _, p in ipairs({ "/proc proc", "/sys sysfs", "/dev devtmpfs", "/tmp tmpfs", "/run tmpfs", "/home tmpfs" }) do
    t:assert_contains(m, " " .. p .. " ")
  end
  t:assert_eq(h:run("ls -A /home"):assert_ok().stdout, "", "an empty /home")
end)

test("a VM of the host profile has no snapshots", function(t)
  t:assert_contains(t:assert_raises(function() h:snapshot() end), "cannot migrate a virtio-fs device")
end)
