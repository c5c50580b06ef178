-- VM tests on the built-in linux profile: boot options (cmdline,
-- cmdline_append, files, initial_time, agent_timeout) in provium:vm and vm:boot.
local a = provium:vm("a", "linux", {
  memory = "256M",
  cmdline_append = "provium.test=from-vm",
  files = {
    { path = "/etc/app/config.toml", content = "port = 80\n", mode = "0600" },
    { path = "/tmp/early", content = "in /tmp, which PID 1 mounts after the initramfs\n" },
    { path = "/usr/local/bin/hello", content = "#!/bin/sh\necho hello from a boot file\n", mode = 493 },
  },
  initial_time = "2031-05-06T07:08:09",
})
a:boot{ cmdline_append = "provium.test=from-boot", agent_timeout = "120s" }

test("cmdline_append of vm:boot replaces the one of provium:vm", function(t)
  local cmdline = a:run("cat /proc/cmdline").stdout
  t:assert_contains(cmdline, "provium.test=from-boot")
  t:assert(not cmdline:find("from-vm", 1, true), cmdline)
  t:assert_contains(cmdline, "console=ttyS0", "provium's own words stay")
  -- without it a loaded TCG host can panic the kernel's early timer check
  t:assert_contains(cmdline, "no_timer_check", "provium's own words stay")
end)

test("boot files are in place, with their modes, before the agent answers", function(t)
  t:assert_eq(a:read_file("/etc/app/config.toml"), "port = 80\n")
  t:assert_eq(a:run("stat -c %a /etc/app/config.toml /etc/app /usr/local/bin/hello /tmp/early /tmp").stdout,
    "600\n755\n755\n644\n1777\n")
  t:assert_eq(a:run("/usr/local/bin/hello").stdout, "hello from a boot file\n")
  t:assert_eq(a:run("ls -a / | grep -c provium-boot || true").stdout, "0\n", "the staging directory is gone")
end)

test("initial_time sets the guest's clock at power-on", function(t)
  local year = a:run("date -u +%Y-%m-%d").stdout
  t:assert_eq(year, "2031-05-06\n")
end)

test("bad boot options are errors naming the key", function(t)
  local cases = {
    { { cmdline = 42 }, "cmdline must be a string, got number" },
    { { cmdline_append = "a\nb" }, "cmdline_append holds a control character" },
    { { initial_time = "yesterday" }, 'initial_time "yesterday" is not a UTC date' },
    { { initial_time = "2030-02-31" }, "is not a date of the calendar" },
    { { initial_time = -5 }, "outside 1970..2099" },
    { { files = { { path = "rel/x", content = "" } } }, 'files[1].path "rel/x" must be an absolute path' },
    { { files = { { path = "/a/../b", content = "" } } }, 'must not have empty, "." or ".." components' },
    { { files = { { path = "/x" } } }, "files[1].content must be a string" },
    { { files = { { path = "/x", content = "", mod = 1 } } }, 'files[1]: unknown key "mod"' },
    { { files = { { path = "/x", content = "", mode = "999" } } }, "files[1]" },
    { { files = "x" }, "files must be a list" },
    { { agent_timeout = 0 }, "agent_timeout must be more than 0" },
    { { cmdline_apend = "x" }, 'unknown key "cmdline_apend" (did you mean "cmdline_append"?' },
  }
  for i, c in ipairs(cases) do
    local err = t:assert_raises(function() provium:vm("bad" .. i, "linux", c[1]) end)
    t:assert_contains(err, "provium:vm options", "case " .. i)
    t:assert_contains(err, c[2], "case " .. i)
  end
  local b = provium:vm("b", "linux")
  t:assert_contains(t:assert_raises(function() b:boot{ timeout = "10s", agent_timeout = "10s" } end),
    "timeout and agent_timeout are the same")
  t:assert_contains(t:assert_raises(function() b:boot{ files = { { path = "/big", content = string.rep("x", 100 << 20) } } } end),
    "more than a quarter of the VM's memory")
  t:assert_eq(b.state, "created", "a refused boot starts nothing")
end)

test("cmdline replaces the profile's command line; a VM without options boots as before", function(t)
  local c = provium:vm("c", "linux", { memory = "256M", cmdline = "provium.only=1" })
  c:boot()
  t:assert_contains(c:run("cat /proc/cmdline").stdout, "provium.only=1")
  local year, host = tonumber(c:run("date -u +%Y").stdout), tonumber(os.date("!%Y"))
  t:assert(math.abs(year - host) <= 1, "the host's time without initial_time: " .. year .. " vs " .. host)
  c:shutdown()
end)
