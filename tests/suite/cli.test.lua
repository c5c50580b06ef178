-- The command line as a user meets it.
local pv = require("lib.pv")

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

test("bad input: one clear line, exit 2", function(t)
  local cases = {
    { { "--bogus" }, "unknown option --bogus" },
    { { "--mem" }, "--mem needs a value" },
    { { "--mem", "lots", "." }, "--mem" },
    { { "--cpus", "0", "." }, "--cpus" },
    { { "--timeout", "5x", "." }, "--timeout" },
    { { "frobnicate" }, "unknown subcommand or path 'frobnicate'" },
    { { "/nonexistent/dir" }, "/nonexistent/dir" },
    { { "--json", "--events-stdout", "." }, "--json and --events-stdout" },
    { { "--config", "/nonexistent/provium.lua", "." }, "/nonexistent/provium.lua" },
  }
  for _, c in ipairs(cases) do
    local r = pv.run(c[1])
    t:assert_eq(r.code, 2, table.concat(c[1], " ") .. " -> " .. r.stderr)
    t:assert_contains(r.stderr, c[2])
    local _, lines = r.stderr:gsub("\n", "")
    t:assert_eq(lines, 1, "one line: " .. r.stderr)
  end
end)

test("--version and list", function(t)
  local code, out = sh(pv.q(pv.bin) .. " --version")
  t:assert_eq(code, 0)
  t:assert_contains(out, "provium ")
  code, out = sh(pv.q(pv.bin) .. " list " .. pv.q(pv.cases .. "/pool"))
  t:assert_eq(code, 0)
  t:assert_contains(out, "huge.test.lua  claim: 100TiB, 1 cpus")
  t:assert_contains(out, "small_a.test.lua")
end)

test("--tag, --no-tag, --include-slow, --filter", function(t)
  local r = pv.run({ "--tag", "net", "--filter", "tags", pv.cases .. "/filters" })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(pv.outcome(r.events, "tags.test.lua", "net test"), "passed")
  local o, p = pv.outcome(r.events, "tags.test.lua", "disk test")
  t:assert_eq({ o, p.reason }, { "skipped", "filtered out by --tag net" })
  t:assert_eq(pv.outcome(r.events, "tags.test.lua", "untagged"), "skipped")
  t:assert_eq(#pv.of(r.events, "file_discovered"), 1, "--filter restricts discovery")

  r = pv.run({ "--no-tag", "net", "--include-slow", pv.cases .. "/filters/tags.test.lua" })
  t:assert_eq(pv.outcome(r.events, "tags.test.lua", "net test"), "skipped")
  t:assert_eq(pv.outcome(r.events, "tags.test.lua", "disk test"), "passed")
  t:assert_eq(pv.outcome(r.events, "tags.test.lua", "untagged"), "passed")

  r = pv.run({ "--tag", "net", "--include-slow", pv.cases .. "/filters/tags.test.lua" })
  t:assert_eq(pv.outcome(r.events, "tags.test.lua", "slow net"), "passed")
end)

test("--fail-fast stops dispatching", function(t)
  local r = pv.run({ "--fail-fast", "--cpus", "1", pv.cases .. "/filters" })
  t:assert_eq(r.code, 1)
  t:assert_eq(#pv.of(r.events, "file_dispatched"), 1, "other.test.lua fails first; tags.test.lua never starts")
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)

test("-x is --fail-fast", function(t)
  local r = pv.run({ "-x", "--cpus", "1", pv.cases .. "/filters" })
  t:assert_eq(r.code, 1)
  t:assert_eq(#pv.of(r.events, "file_dispatched"), 1)
end)

test("--jobs N: at most N files at once, whatever the pool holds", function(t)
  local r = pv.run({ "--jobs", "1", "--cpus", "8", pv.cases .. "/filters" })
  t:assert_eq(r.code, 1, r.stderr) -- other.test.lua fails on purpose
  local order = {}
  for _, e in ipairs(r.events) do
    if e.kind == "file_dispatched" or e.kind == "file_completed" then order[#order + 1] = e.kind end
  end
  t:assert_eq(table.concat(order, " "), "file_dispatched file_completed file_dispatched file_completed")
  t:assert_eq(pv.check_guarantees(r.events), nil)
  -- without it, the pool runs both at once
  r = pv.run({ "--cpus", "8", pv.cases .. "/filters" })
  order = {}
  for _, e in ipairs(r.events) do
    if e.kind == "file_dispatched" or e.kind == "file_completed" then order[#order + 1] = e.kind end
  end
  t:assert_eq(table.concat(order, " "), "file_dispatched file_dispatched file_completed file_completed")
  for _, bad in ipairs({ "0", "x", "-1", "99999" }) do
    local b = pv.run({ "--jobs", bad, pv.cases .. "/filters", no_save = true })
    t:assert_eq(b.code, 2)
    t:assert_eq(b.stderr, 'provium: --jobs: "' .. bad .. '" is not a whole number from 1 to 4096\n')
  end
end)

test("--json: one object per event, then a summary", function(t)
  local r = pv.run({ "--json", pv.cases .. "/filters/tags.test.lua", no_save = true })
  t:assert_eq(r.code, 0, r.stderr)
  local lines = {}
  for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
  t:assert_contains(lines[1], '"kind":"file_discovered"')
  t:assert_contains(lines[#lines], '"summary"')
  t:assert_contains(lines[#lines], '"passed":3')
  for i = 1, #lines - 1 do
    t:assert(lines[i]:match('^{"ts":%d+,"kind":"[a-z_]+","payload":{'), "frame shape: " .. lines[i])
  end
end)

test("--events-stdout: frames on stdout, human report on stderr", function(t)
  local out = pv.tmp("stdout.events")
  local code = os.execute(string.format("%s --events-stdout %s >%s 2>/dev/null", pv.q(pv.bin),
    pv.q(pv.cases .. "/filters/tags.test.lua"), pv.q(out)))
  t:assert(code, "run succeeded")
  local ev = pv.decode(out)
  t:assert_eq(ev[1].kind, "file_discovered")
  t:assert_eq(ev[#ev].kind, "file_completed")
  t:assert_eq(pv.check_guarantees(ev), nil)
end)

test("an output that cannot be written: one line naming it and the errno, exit 2", function(t)
  local case = pv.q(pv.cases .. "/filters/tags.test.lua")
  local err = pv.tmp("full.err")
  for _, c in ipairs({
    { "--json >/dev/full", "provium: cannot write the --json output to stdout: No space left on device" },
    { "--events-stdout >/dev/full", "provium: cannot write events to stdout: No space left on device" },
    { ">/dev/full", "provium: cannot write the report to stdout: No space left on device" },
    { "--json >/dev/null --save-events /dev/full", "provium: cannot write events to /dev/full: No space left on device" },
  }) do
    local code = sh(string.format("(%s -q %s %s 2>%s)", pv.q(pv.bin), case, c[1], pv.q(err)))
    local stderr = pv.slurp(err)
    t:assert_eq(code, 2, c[1] .. ": " .. stderr)
    local lines = {}
    for l in stderr:gmatch("[^\n]*cannot write[^\n]*") do lines[#lines + 1] = l end
    t:assert_eq(#lines, 1, c[1] .. ": one line: " .. stderr)
    t:assert_contains(lines[1], c[2])
  end
  -- the report on stderr, when stdout carries --json
  local code = sh(string.format("(%s %s --json 2>/dev/full >/dev/null)", pv.q(pv.bin), case))
  t:assert_eq(code, 2, "a report that cannot be written to stderr still fails the exit status")
end)

test("--save-events appends; provium-coverage reports each run", function(t)
  local f = pv.tmp("twice.events")
  for _ = 1, 2 do
    os.execute(string.format("%s -q --save-events %s %s >/dev/null 2>&1", pv.q(pv.bin), pv.q(f),
      pv.q(pv.cases .. "/filters/tags.test.lua")))
  end
  local code, out = sh(string.format("%s --from %s --by tags", pv.q(pv.coverage), pv.q(f)))
  t:assert_eq(code, 0, out)
  t:assert_contains(out, "net")
  local first, second = out:match("^(.-)\n\nrun 2:\n(.*)$")
  t:assert(first and second, "two reports: " .. out)
  t:assert_eq(first:match("(total[^\n]*)$"):gsub("%s+", " "), "total 3 0 1 4")
  t:assert_eq(second:match("(total[^\n]*)\n$"):gsub("%s+", " "), "total 3 0 1 4")
end)

-- A run starts at a file_discovered that follows a frame of another kind
-- (docs/events.md): how any consumer of a --watch stream splits it.
local function runs_of(events)
  local runs, prev = {}, nil
  for _, e in ipairs(events) do
    if #runs == 0 or (e.kind == "file_discovered" and prev ~= "file_discovered") then runs[#runs + 1] = {} end
    table.insert(runs[#runs], e)
    prev = e.kind
  end
  return runs
end

-- provium --watch in the background (bounded), its pid in pidfile.
local function watch_bg(args, pidfile)
  os.execute(string.format("timeout 150 %s -q --watch %s >/dev/null 2>&1 </dev/null & echo $! > %s",
    pv.q(pv.bin), args, pv.q(pidfile)))
end

-- SIGTERM to it, then wait until it has exited.
local function stop_bg(pidfile)
  os.execute(string.format("pid=$(cat %s); kill -TERM $pid; timeout 60 tail -s 0.1 --pid=$pid -f /dev/null",
    pv.q(pidfile)))
end

local function wait_socket(sock)
  os.execute(string.format("for i in $(seq 1200); do [ -S %s ] && break; sleep 0.05; done", pv.q(sock)))
end

-- A raw client in the background: every byte it gets from sock until the
-- producer closes goes to out. Returns once it is connected.
local CAPTURE = [[
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
open(sys.argv[2] + ".connected", "w").close()
with open(sys.argv[2], "wb") as f:
    while True:
        b = s.recv(65536)
        if not b:
            break
        f.write(b)
]]
local function capture_bg(sock, out)
  os.execute(string.format("timeout 120 /usr/bin/python3 -c %s %s %s </dev/null >/dev/null 2>&1 & " ..
    "for i in $(seq 1200); do [ -e %s ] && break; sleep 0.05; done",
    pv.q(CAPTURE), pv.q(sock), pv.q(out), pv.q(out .. ".connected")))
end

-- Lines of a popen'd consumer up to the first that matches pat (or its end).
local function read_until(p, pat)
  local got = {}
  for l in p:lines() do
    got[#got + 1] = l
    if l:match(pat) then break end
  end
  return table.concat(got, "\n")
end

test("--events-socket: a live consumer sees the whole run", function(t)
  local sock, pid = pv.tmp("live.sock"), pv.tmp("live.pid")
  watch_bg(string.format("--events-socket %s %s", pv.q(sock), pv.q(pv.cases .. "/live")), pid)
  wait_socket(sock)
  -- It joins mid-run or after the run (the --watch pause, when nothing is
  -- emitted): either way it is sent the run from its start at once, and
  -- reports the run as soon as it is complete, while provium still runs.
  local p = io.popen(string.format("timeout 60 %s --from-socket %s 2>&1; echo exit=$?", pv.q(pv.coverage), pv.q(sock)))
  local report = read_until(p, "^total")
  stop_bg(pid)
  local rest = p:read("a")
  p:close()
  t:assert_contains(report, "live")
  t:assert_eq((report:match("(total[^\n]*)$") or report):gsub("%s+", " "), "total 2 0 0 2")
  t:assert_eq(rest, "exit=0\n", "the end of the stream adds nothing: " .. rest)
  t:assert_eq(io.open(sock), nil, "socket unlinked at exit")
end)

test("--events-socket with --watch: every client sees whole runs, one report per run", function(t)
  local dir, sock, pid = pv.tmp("wsock"), pv.tmp("w.sock"), pv.tmp("w.pid")
  local early, late, stop = pv.tmp("early.events"), pv.tmp("late.events"), pv.tmp("w.stop")
  local file = dir .. "/w.test.lua"
  os.execute("mkdir -p " .. pv.q(dir))
  local h = io.open(file, "w")
  h:write('test("one", { spec = "w" }, function(t) end)\ntest("two", { spec = "w" }, function(t) end)\n')
  h:close()
  watch_bg(string.format("--events-socket %s %s", pv.q(sock), pv.q(dir)), pid)
  wait_socket(sock)
  capture_bg(sock, early)
  local p = io.popen(string.format("timeout 90 %s --from-socket %s 2>&1; echo exit=$?", pv.q(pv.coverage), pv.q(sock)))
  local r1 = read_until(p, "^total")
  -- a third test; written until provium notices (a write before it watches again is missed)
  os.execute(string.format("(for i in $(seq 120); do [ -e %s ] && break; " ..
    "printf 'test(\"one\", { spec = \"w\" }, function(t) end)\\ntest(\"two\", { spec = \"w\" }, function(t) end)\\n" ..
    "test(\"three\", { spec = \"w\" }, function(t) end)\\n' > %s; sleep 0.5; done) &", pv.q(stop), pv.q(file)))
  local r2 = read_until(p, "^total")
  os.execute("touch " .. pv.q(stop))
  capture_bg(sock, late) -- joins later: mid-run or in a pause
  -- a second consumer served in the pause, with nothing emitted meanwhile
  local p2 = io.popen(string.format("timeout 60 %s --from-socket %s 2>&1; echo exit=$?", pv.q(pv.coverage), pv.q(sock)))
  local r3 = read_until(p2, "^total")
  stop_bg(pid)
  local rest, rest2 = p:read("a"), p2:read("a")
  p:close()
  p2:close()

  t:assert_eq((r1:match("(total[^\n]*)$") or r1):gsub("%s+", " "), "total 2 0 0 2", r1)
  t:assert_contains(r2, "run 2:")
  t:assert_eq((r2:match("(total[^\n]*)$") or r2):gsub("%s+", " "), "total 3 0 0 3", "run 2 alone, not 5: " .. r2)
  t:assert_eq((r3:match("(total[^\n]*)$") or r3):gsub("%s+", " "), "total 3 0 0 3", r3)
  t:assert(rest:match("exit=0\n$"), rest)
  t:assert(rest2:match("exit=0\n$"), rest2)
  for _, c in ipairs({ { early, 2 }, { late, 3 } }) do
    local runs = runs_of(pv.decode(c[1]))
    t:assert(#runs >= 1, c[1] .. ": no run")
    for i, run in ipairs(runs) do
      t:assert_eq(run[1].kind, "file_discovered", c[1] .. ": run " .. i .. " starts at its start")
      t:assert_eq(pv.check_guarantees(run), nil, c[1] .. ": run " .. i)
    end
    t:assert_eq(pv.count(runs[1], "test_passed"), c[2], c[1] .. ": its first run")
    for i = 2, #runs do t:assert_eq(pv.count(runs[i], "test_passed"), 3, c[1] .. ": run " .. i) end
  end
end)

test("--events-socket: a consumer that joins mid-run is sent the run so far while the file still runs", function(t)
  local sock, saved, got, marker = pv.tmp("mid.sock"), pv.tmp("mid.events"), pv.tmp("mid.got"), pv.tmp("mid.marker")
  local f = io.popen(string.format(
    "PROVIUM_MIDRUN_MARKER=%s timeout 150 %s -q --save-events %s --events-socket %s %s >/dev/null 2>&1; echo $?",
    pv.q(marker), pv.q(pv.bin), pv.q(saved), pv.q(sock), pv.q(pv.cases .. "/midrun")))
  -- joins once the test has started: the file is held until the marker exists
  os.execute(string.format("for i in $(seq 2400); do grep -q test_started %s 2>/dev/null && break; sleep 0.05; done",
    pv.q(saved)))
  wait_socket(sock)
  capture_bg(sock, got)
  -- served without the run going on: the replay reaches it while the test is held
  os.execute(string.format("for i in $(seq 2400); do grep -q test_started %s 2>/dev/null && break; sleep 0.05; done",
    pv.q(got)))
  local held = (pv.slurp(got) or ""):find("test_passed", 1, true) -- may end in a partial frame
  os.execute("touch " .. pv.q(marker))
  local code = tonumber(f:read("a"))
  f:close()
  os.execute(string.format("for i in $(seq 1200); do [ -e %s ] || break; sleep 0.05; done", pv.q(sock)))
  t:assert_eq(code, 0)
  t:assert_eq(held, nil, "the test was still held when the replay arrived")
  local events = pv.decode(got)
  t:assert_eq(events[1] and events[1].kind, "file_discovered", "the replay starts at the run's start")
  t:assert_eq(pv.check_guarantees(events), nil)
  t:assert_eq(pv.outcome(events, "held.test.lua", "held"), "passed")
end)

test("Ctrl-C: running tests end, events flushed, exit 130", function(t)
  local ev = pv.tmp("int.events")
  local f = io.popen(string.format(
    "%s -q --save-events %s %s >/dev/null 2>&1 & pid=$!; sleep 0.5; kill -INT $pid; wait $pid; echo $?",
    pv.q(pv.bin), pv.q(ev), pv.q(pv.cases .. "/long")))
  local code = tonumber(f:read("a"))
  f:close()
  t:assert_eq(code, 130)
  local events = pv.decode(ev)
  t:assert_eq(pv.check_guarantees(events), nil)
  t:assert_eq(pv.outcome(events, "waits.test.lua", "quick"), "passed")
  local o, p = pv.outcome(events, "waits.test.lua", "waits ten seconds")
  t:assert_eq(o, "skipped")
  t:assert_contains(p.reason, "interrupted")
  t:assert_eq(pv.outcome(events, "waits.test.lua", "after the wait"), "skipped")
end)

test("--watch re-runs on change; saved events restart per iteration", function(t)
  local dir = pv.tmp("watched")
  local ev = pv.tmp("watch.events")
  os.execute("mkdir -p " .. pv.q(dir))
  local function write(body)
    local h = io.open(dir .. "/w.test.lua", "w")
    h:write(body)
    h:close()
  end
  write('test("first", function(t) end)\n')
  -- The change: a test held until the suite creates go, so the second run
  -- cannot end (and provium watch again) while the change is still being
  -- written, which would start a third run.
  local second, go = pv.tmp("second.lua"), pv.tmp("watch.go")
  local h = io.open(second, "w")
  h:write(string.format('test("second", function(t)\n' ..
    '  wait_until(function() local f = io.open(%q) if f then f:close() end return f ~= nil end,\n' ..
    '    { timeout = "120s", interval = "50ms" })\nend)\n', go))
  h:close()
  -- Waits on what the events file shows, with generous bounds: the first run
  -- complete; the change written again until the second run has started its
  -- test (a write before provium watches again is not seen); then go; the
  -- second run complete.
  local f = io.popen(string.format(
    "%s -q --watch --save-events %s %s >/dev/null 2>&1 & pid=$!; " ..
    "for i in $(seq 1200); do grep -q file_completed %s 2>/dev/null && break; sleep 0.05; done; " ..
    "for i in $(seq 120); do cp %s %s; " ..
    "  for j in $(seq 10); do grep -q second %s 2>/dev/null && break 2; sleep 0.05; done; done; " ..
    "touch %s; " ..
    "for i in $(seq 2400); do grep -q file_completed %s 2>/dev/null && break; sleep 0.05; done; " ..
    "kill -TERM $pid; wait $pid; echo $?",
    pv.q(pv.bin), pv.q(ev), pv.q(dir), pv.q(ev), pv.q(second), pv.q(dir .. "/w.test.lua"), pv.q(ev), pv.q(go), pv.q(ev)))
  local out = f:read("a")
  f:close()
  -- an interrupt ends the watch with 128+SIGTERM, not the last run's status
  t:assert_eq(tonumber(out), 143, "SIGTERM ends the watch: " .. out)
  local events = pv.decode(ev)
  t:assert_eq(pv.outcome(events, "w.test.lua", "second"), "passed")
  t:assert_eq(pv.outcome(events, "w.test.lua", "first"), nil, "the first iteration's events are gone")
end)
