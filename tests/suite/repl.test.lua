-- provium repl, provium shell FILE --at TEST, and --debug with t:pause()
-- (issue 15), driven through a pseudo-terminal (lib/pty_drive.py) as a
-- person at a terminal would. Every send waits for the prompt it types
-- into: a key typed before the line editor has the terminal is the
-- terminal driver's, and a ^D there is lost.
local pv = require("lib.pv")

local cases = pv.cases .. "/repl"

-- Runs provium ARGS... under the pty driver with steps (a list of lines),
-- from dir; returns whether every step held, and the transcript. The
-- terminal is an xterm unless env sets TERM: the caller's own TERM (CI's is
-- often dumb or unset) must not decide which line editor the test meets.
local function drive(t, dir, steps, args, env)
  return pv.pty(t, steps, args, env, dir)
end

test("bad input: one line, exit 2, before any VM boots", function(t)
  local cases_ = {
    { { "repl", "nosuch" }, "repl: unknown profile 'nosuch' (profiles: linux, host" },
    { { "repl", "--fixture", "nosuch" }, 'fixture "nosuch" not found' },
    { { "repl", "linux", "host" }, "repl takes one profile, got 2 arguments" },
    { { "repl", "linux", "--fixture", "seeded" }, "repl: a profile or --fixture, not both" },
    { { "repl", "--at", "x" }, "--at goes with provium shell FILE --at TEST" },
    { { "repl", "--debug" }, "--debug goes with a run" },
    { { "repl", "--watch" }, "repl does not take --watch or --filter" },
    { { "--fixture", "x", "shell.test.lua" }, "--fixture goes with provium repl" },
    { { "--name", "x", "shell.test.lua" }, "--name goes with provium repl" },
    { { "shell", "shell.test.lua" }, "shell needs one test file and the test to stop in" },
    { { "shell", "--at", "first" }, "shell needs one test file and the test to stop in" },
    { { "shell", "shell.test.lua", "--at", "nosuch" }, "shell: shell.test.lua has no test named 'nosuch' (its tests: 'first', 'second')" },
  }
  for _, c in ipairs(cases_) do
    local ok, out = drive(t, cases, { "timeout 60", "exit 2" }, c[1])
    local what = table.concat(c[1], " ")
    t:assert(ok, what .. ": exit 2 expected:\n" .. out)
    t:assert(out:find("provium: " .. c[2], 1, true), what .. ": " .. out)
    local n = select(2, out:gsub("\n", ""))
    t:assert_eq(n, 1, what .. ": one line, got:\n" .. out)
  end
end)

test("off a terminal, repl and shell refuse with one line, exit 2", function(t)
  local r = pv.run({ "repl", no_save = true })
  t:assert_eq(r.code, 2)
  t:assert_eq(r.stderr, "provium: repl needs a terminal on stdin and stdout (for scripts, write a *.test.lua)\n")
  r = pv.run({ "shell", cases .. "/shell.test.lua", "--at", "first", no_save = true })
  t:assert_eq(r.code, 2)
  t:assert(r.stderr:find("^provium: shell needs a terminal on stdin and stdout"), r.stderr)
end)

test("repl: expressions, the VM, completion, multi-line input, ^C, history, ^D", function(t)
  local state = pv.tmp("state")
  local ok, out = drive(t, cases, {
    "timeout 120",
    "expect provium> ",
    "send 1 + 1\\n", "expect 2", "expect provium> ",
    -- a RunResult's field, a string shown quoted
    'send vm:run("echo hi").stdout\\n', 'expect "hi\\\\n"', "expect provium> ",
    -- globals persist between lines
    "send x = 41\\n", "expect provium> ", "send x + 1\\n", "expect 42", "expect provium> ",
    -- tables are shown with sorted keys
    "send { b = 2, a = { 1, 2 } }\\n", "expect a = { 1, 2 }", "expect b = 2", "expect provium> ",
    -- a method completes (the editor inserts the rest after the cursor)
    "send vm:wri\\t", "expect te_file", 'send ("/tmp/f", "done")\\n', "expect provium> ",
    'send vm:read_file("/tmp/f")\\n', 'expect "done"', "expect provium> ",
    -- an incomplete line asks for more
    "send for i = 1, 2 do\\n", "expect >> ", "send print(i * 10) end\\n", "expect 10", "expect 20", "expect provium> ",
    -- ^C interrupts the op and the prompt comes back, the VM usable
    'send vm:run("sleep 30")\\n', "sleep 2", "send \\x03",
    "timeout 15", "expect interrupted: VM 'linux' stopped waiting for run", "expect provium> ",
    "timeout 60",
    'send vm:run("echo after").stdout\\n', 'expect "after\\\\n"', "expect provium> ",
    -- a Lua error is one message, without the REPL's own frames
    "send error('boom')\\n", "expect error: stdin:1: boom", "expect provium> ",
    "send \\x04",
    "exit 0",
  }, { "repl" }, "XDG_STATE_HOME=" .. pv.q(state))
  t:assert(ok, "the session did not go as expected:\n" .. out)
  t:assert(not out:find("in method 'pause'", 1, true), "the REPL's frames leak into errors:\n" .. out)
  t:assert(not out:find("PASS", 1, true) and not out:find("FAIL", 1, true), out)
  -- libedit's history file escapes spaces as \040
  local hist = pv.slurp(state .. "/provium/repl_history"):gsub("\\040", " ")
  t:assert(hist:find("\nx = 41\n", 1, true), "history:\n" .. hist)
  t:assert(hist:find('\nvm:write_file("/tmp/f", "done")\n', 1, true), "a completion appends nothing:\n" .. hist)
end)

test("a terminal libedit cannot drive: plain lines, keys typed at once kept, no colour", function(t)
  for _, term in ipairs({ "dumb", "" }) do
    local ok, out = drive(t, cases, {
      "timeout 120",
      "expect provium> ",
      "send 6 * 7\\n", "expect 42", "expect provium> ",
      "send x = 1\\n", "expect provium> ", "send x + 1\\n", "expect 2", "expect provium> ",
      "send \\x04",
      "exit 0",
    }, { "repl" }, "TERM=" .. term)
    t:assert(ok, "TERM=" .. term .. ":\n" .. out)
    local _, echoes = out:gsub("6 %* 7", "")
    t:assert_eq(echoes, 1, "TERM=" .. term .. ": the line is echoed once:\n" .. out)
    t:assert(not out:find("\27[", 1, true), "TERM=" .. term .. ": no escape codes:\n" .. out)
  end
end)

test("keys typed the moment the prompt shows: echoed once, and a ^D there leaves", function(t)
  -- each send follows its prompt at once: before the fix, libedit printed
  -- the prompt while the terminal was still in line mode, so these keys
  -- were echoed twice and the ^D was lost (the session never ended)
  for _ = 1, 5 do
    local ok, out = drive(t, cases, {
      "timeout 120",
      "expect provium> ", "send 6 * 7\\n", "expect 42",
      "expect provium> ", "send \\x04",
      "timeout 30",
      "exit 0",
    }, { "repl" })
    t:assert(ok, out)
    local _, echoes = out:gsub("6 %* 7", "")
    t:assert_eq(echoes, 1, "echoed once:\n" .. out)
  end
end)

test("repl --fixture resumes the fixture's VM; --name renames a profile's", function(t)
  local cache = pv.tmp("cache")
  local ok, out = drive(t, cases, {
    "timeout 180",
    "expect provium> ",
    'send vm:read_file("/root/seed")\\n', 'expect "grown"', "expect provium> ",
    "send vm.name\\n", 'expect "seeded"', "expect provium> ",
    "send \\x04",
    "exit 0",
  }, { "repl", "--fixture", "seeded", "--cache-dir", cache })
  t:assert(ok, out)
  ok, out = drive(t, cases, {
    "timeout 120",
    "expect VM 'mybox' (linux) is running as `vm`",
    "expect provium> ",
    "send vms.mybox.name\\n", 'expect "mybox"', "expect provium> ",
    "send \\x04",
    "exit 0",
  }, { "repl", "linux", "--name", "mybox" })
  t:assert(ok, out)
end)

test("shell --at: the prompt after that test, with its VM; the file goes on after it", function(t)
  local ok, out = drive(t, cases, {
    "timeout 120",
    "expect provium shell: test 'first' passed.",
    "expect provium> ",
    'send vm:read_file("/tmp/left")\\n', 'expect "by first"', "expect provium> ",
    "send .continue\\n",
    "expect 2 passed",
    "exit 0",
  }, { "shell", "shell.test.lua", "--at", "first" })
  t:assert(ok, out)
end)

test("--debug: t:pause() stops with its vars and no timeout runs; without it, a line in the log", function(t)
  -- the test's timeout is 3s; it waits at the prompt for 4
  local ok, out = drive(t, cases, {
    "timeout 60",
    "expect look at answer", "expect provium> ",
    "send answer\\n", "expect 42", "expect provium> ",
    "send nested.a[3]\\n", "expect 3", "expect provium> ",
    "sleep 4",
    "send \\x04",
    "expect 1 passed",
    "exit 0",
  }, { "--debug", "pause.test.lua" })
  t:assert(ok, out)
  local r = pv.run({ cases .. "/pause.test.lua", no_save = true })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  -- a failing test shows its log
  r = pv.run({ cases .. "/pause.test.lua", env = "PAUSE_FAIL=1", no_save = true })
  t:assert_eq(r.code, 1, r.stdout .. r.stderr)
  t:assert_contains(r.stdout, "t:pause() at pause.test.lua:6 passed over: run with --debug (or provium shell) to stop there")
end)
