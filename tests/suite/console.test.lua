-- provium console PROFILE (issue 15): the serial console of a booted guest
-- on the terminal, driven through a pseudo-terminal (lib/pty_drive.py) as a
-- person would, and as a pipe; --print-command; bad input.
provium.timeout = "3m" -- three boots of a few seconds each under TCG
local pv = require("lib.pv")

local seq = 0

-- A scratch parent of the session's own: its QEMU is findable by that path
-- (in /proc/PID/cmdline), and what is left in it after the session is what
-- leaked.
local function scratch(t)
  seq = seq + 1
  local dir = pv.tmp("run" .. seq)
  os.execute("mkdir -p " .. pv.q(dir))
  return dir
end

-- Whether a process runs whose command line has both words (read from
-- /proc: no procps needed).
local function running(a, b)
  local p = io.popen("ls /proc")
  for pid in p:lines() do
    local f = pid:match("^%d+$") and io.open("/proc/" .. pid .. "/cmdline", "rb")
    if f then
      local cmd = f:read("a") or ""
      f:close()
      if cmd:find(a, 1, true) and cmd:find(b, 1, true) then
        p:close()
        return true
      end
    end
  end
  p:close()
  return false
end

local function qemu_gone(t, dir)
  t:assert(not running("qemu-system", dir .. "/vm-"), "a QEMU of the session still runs")
  local p = io.popen("ls -A " .. pv.q(dir))
  local left = p:read("a")
  p:close()
  t:assert_eq(left, "", "the session's scratch directory is removed")
end

local function drive(t, steps, args, env)
  return pv.pty(t, steps, args, env)
end

test("bad input: one line, exit 2, no VM", function(t)
  local cases = {
    { { "console", "nosuch" }, "provium: console: unknown profile 'nosuch' (profiles: linux" },
    { { "console" }, "provium: console takes one profile, got 0 arguments" },
    { { "console", "linux", "linux" }, "provium: console takes one profile, got 2 arguments" },
    { { "console", "linux", "--mem", "12Q" }, 'provium: --mem: bad size "12Q"' },
    { { "console", "linux", "--mem", "1M" }, 'provium: --mem: "1M" is too small' },
    { { "console", "linux", "--cpus", "0" }, 'provium: --cpus: "0" is not a whole number from 1 to 64' },
    { { "console", "linux", "--cpus", "two" }, 'provium: --cpus: "two" is not a whole number from 1 to 64' },
    { { "console", "linux", "--watch" }, "provium: console takes only --mem, --cpus, --cmdline" },
    { { "console", "host" }, "provium: console: profile 'host' boots on the host's root" },
    { { "--print-command" }, "provium: --print-command goes with provium console PROFILE" },
    { { "--cmdline", "x" }, "provium: --cmdline goes with provium console PROFILE" },
  }
  for _, c in ipairs(cases) do
    local args = { no_save = true }
    for i, a in ipairs(c[1]) do args[i] = a end
    local r = pv.run(args)
    local what = table.concat(c[1], " ")
    t:assert_eq(r.code, 2, what)
    t:assert(r.stderr:find(c[2], 1, true) == 1, what .. ": " .. r.stderr)
    t:assert_eq(select(2, r.stderr:gsub("\n", "")), 1, what .. ": one line: " .. r.stderr)
    t:assert_eq(r.stdout, "", what)
  end
end)

test("--print-command: the QEMU command line, and no VM", function(t)
  local dir = scratch(t)
  local r = pv.run({ "console", "linux", "--print-command", "--mem", "384M", "--cpus", "2", "--cmdline", "a=b c=d",
    env = "XDG_RUNTIME_DIR=" .. pv.q(dir), no_save = true })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(select(2, r.stdout:gsub("\n", "")), 1, "one line: " .. r.stdout)
  t:assert(r.stdout:find("^qemu%-system%-x86_64 "), r.stdout)
  t:assert(r.stdout:find(" -m 384M ", 1, true), r.stdout)
  t:assert(r.stdout:find(" -smp 2 ", 1, true), r.stdout)
  t:assert(r.stdout:find(" -kernel [^ ]+/vmlinuz "), r.stdout)
  -- the kernel command line is one shell word, the extra words in it
  t:assert(r.stdout:find("-append 'console=ttyS0 [^']* a=b c=d provium.console=shell'"), r.stdout)
  t:assert(r.stdout:find(dir .. "/vm-XXXXXX/qmp.sock", 1, true), r.stdout)
  qemu_gone(t, dir)
end)

test("on a terminal: the boot, a shell, Ctrl-] leaves and QEMU is gone", function(t)
  local dir = scratch(t)
  local ok, out = drive(t, {
    "timeout 100",
    "expect Ctrl-] leaves; the VM shuts down then",
    "expect provium-agent",
    "expect # ",
    -- the typed line is echoed as it is: only the shell prints cpus-2-1
    "send echo cpus-$(nproc)-$(grep -c provium.test=xyz /proc/cmdline)\\n",
    "expect cpus-2-1",
    "expect # ",
    "send \\x1d",
    "expect provium console: left",
    "exit 0",
  }, { "console", "linux", "--cpus", "2", "--cmdline", "provium.test=xyz" }, "XDG_RUNTIME_DIR=" .. pv.q(dir))
  t:assert(ok, out)
  qemu_gone(t, dir)
end)

test("off a terminal: a pipe, and the guest powering off ends it with 0", function(t)
  local dir = scratch(t)
  local input, out, err = pv.tmp("in"), pv.tmp("out"), pv.tmp("err")
  local f = assert(io.open(input, "w"))
  f:write("echo hi-$((6*7))\npoweroff -f\n")
  f:close()
  local ok, how, code = os.execute(string.format("XDG_RUNTIME_DIR=%s timeout 100 %s console linux <%s >%s 2>%s",
    pv.q(dir), pv.q(pv.bin), pv.q(input), pv.q(out), pv.q(err)))
  local o = io.open(out):read("a")
  local e = io.open(err):read("a")
  t:assert_eq(how == "exit" and code or -1, 0, e)
  t:assert(o:find("\nhi%-42"), o)
  t:assert(e:find("provium console: the guest powered off", 1, true), e)
  qemu_gone(t, dir)
end)
