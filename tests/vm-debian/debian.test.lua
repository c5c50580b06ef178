-- VM tests of Debian profiles built from packages (provium.lua here;
-- docs/images.md): the images are built by the run before this file starts.
local d = provium:vm("d", "deb")
d:boot()

test("a Debian root with the profile's packages, the agent as PID 1", function(t)
  t:assert_eq(d:run("cat /etc/debian_version"):assert_ok().stdout:match("^%d+") ~= nil, true)
  t:assert_eq(d:run("cat /proc/1/comm"):assert_ok().stdout, "init\n")
  -- the package's binary runs: netcat listens, busybox's wget fetches
  local srv = d:run_async("printf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello' | nc.openbsd -l -N 127.0.0.1 8080")
  local r = d:run("for i in 1 2 3 4 5 6 7 8 9 10; do busybox wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.2; done; exit 1")
  t:assert_eq(r:assert_ok().stdout, "hello")
  srv:wait()
  -- dpkg knows what is installed
  t:assert_contains(d:run("dpkg-query -W -f '${Package} ${Status}\\n' netcat-openbsd"):assert_ok().stdout,
    "install ok installed")
end)

test("writes go to a tmpfs overlay; the image is shared and read-only", function(t)
  d:run("echo guest > /etc/provium-marker && mkdir -p /home/u && echo x > /home/u/f"):assert_ok()
  t:assert_eq(d:run("cat /etc/provium-marker"):assert_ok().stdout, "guest\n")
  local m = d:run("cat /proc/mounts"):assert_ok().stdout
  t:assert_contains(m, "overlay / overlay ")
  for _, p in ipairs({ "/proc proc", "/sys sysfs", "/dev devtmpfs", "/tmp tmpfs", "/run tmpfs" }) do
    t:assert_contains(m, " " .. p .. " ")
  end
  -- a second VM of the profile starts from the image, not from d's writes
  local e = provium:vm("e", "deb")
  e:boot()
  t:assert_neq(e:run("cat /etc/provium-marker").exit_code, 0)
  e:shutdown()
end)

test("a snapshot of a Debian VM restores with its writes", function(t)
  d:run("echo before > /root/state"):assert_ok()
  local snap = d:snapshot()
  d:run("echo after > /root/state"):assert_ok()
  d:restore(snap)
  t:assert_eq(d:run("cat /root/state"):assert_ok().stdout, "before\n")
end)

test("init = systemd: systemd is PID 1, the system comes up, the agent is a unit", function(t)
  local s = provium:vm("s", "debsd")
  s:boot()
  t:assert_eq(s:run("cat /proc/1/comm"):assert_ok().stdout, "systemd\n")
  local state = s:run("systemctl is-system-running --wait").stdout
  t:assert_eq(state == "running\n" or state == "degraded\n", true, "is-system-running said " .. state)
  t:assert_contains(s:run("systemctl is-active provium-agent"):assert_ok().stdout, "active")
  -- commands the test starts are systemd's too: a transient unit
  s:run("systemd-run --unit provium-test-sleep sleep 300"):assert_ok()
  t:assert_eq(s:run("systemctl is-active provium-test-sleep"):assert_ok().stdout, "active\n")
  s:shutdown()
end)

test("boot files are refused before the boot: the root moves away from the initramfs", function(t)
  local f = provium:vm("f", "deb")
  local msg = t:assert_raises(function() f:boot({ files = { { path = "/etc/x", content = "y" } } }) end)
  t:assert_contains(msg, "cannot boot VM 'f': boot files go in the initramfs, and profile 'deb' switches root away")
  t:assert_eq(f.state, "created")
end)
