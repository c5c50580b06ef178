-- Real signals to a real provium run: SIGINT, SIGTERM, SIGHUP mid-run (also
-- with a VM up), a runner killed under its VM, --watch interrupted between
-- runs, and a SIGKILLed provium whose scratch directory a later run removes.
-- Each run is told to be mid-test through a FIFO (tests/cases/signals), so
-- nothing here sleeps to guess when to send a signal.
local pv = require("lib.pv")

local seq = 0
local function fresh(name)
  seq = seq + 1
  return pv.tmp(name .. seq)
end

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

local function scratch_dirs(rt)
  local r = {}
  for l in sh("ls -1a " .. pv.q(rt) .. " 2>/dev/null"):gmatch("[^\n]+") do
    if l:match("^provium%-run%-") then r[#r + 1] = l end
  end
  return r
end

-- Starts provium on case (a dir under tests/cases/signals) in the background,
-- waits until its blocking test says ready, sends sig, and waits for it.
-- Returns {code, ready, stdout, stderr, events, rt}.
local function run_and_signal(case, sig, extra)
  local fifo, rt, ev = fresh("fifo"), fresh("rt"), fresh("ev")
  local out, err = fresh("out"), fresh("err")
  os.execute("mkfifo " .. pv.q(fifo) .. " && mkdir -p " .. pv.q(rt))
  local cmd = string.format(
    "PV_SIGNAL_FIFO=%s XDG_RUNTIME_DIR=%s %s --timeout 280s --save-events %s %s %s >%s 2>%s </dev/null & pid=$!; " ..
    -- a generous bound in case the run never gets there (reported below)
    "timeout 240 sh -c 'read l < \"$1\"' sh %s; ready=$?; kill -%s $pid; wait $pid; echo \"$? $ready\"",
    pv.q(fifo), pv.q(rt), pv.q(pv.bin), pv.q(ev), extra or "", pv.q(pv.cases .. "/signals/" .. case),
    pv.q(out), pv.q(err), pv.q(fifo), sig)
  local code, ready = sh(cmd):match("(%d+) (%d+)")
  return { code = tonumber(code), ready = tonumber(ready), stdout = pv.slurp(out), stderr = pv.slurp(err),
           events = pv.decode(ev), rt = rt }
end

-- What every interrupted run must show, whatever the signal.
local function check_interrupted(t, r, signame, code)
  t:assert_eq(r.ready, 0, "the blocking test never started: " .. r.stderr)
  t:assert_eq(r.code, code, r.stderr)
  t:assert_eq(pv.check_guarantees(r.events), nil)
  -- the report says which signal it was, not Ctrl-C for everything
  t:assert_contains(r.stderr, "interrupted by " .. signame)
  if signame ~= "SIGINT" then t:assert_eq(r.stderr:find("Ctrl-C", 1, true), nil, r.stderr) end
  t:assert_contains(r.stdout, "; interrupted by " .. signame)
  t:assert(r.stdout:match("%d+ passed, %d+ failed, %d+ skipped in"), "summary printed: " .. r.stdout)
  -- the scratch directory of the run is gone
  t:assert_eq(#scratch_dirs(r.rt), 0, "scratch dir left: " .. table.concat(scratch_dirs(r.rt), " "))
end

for _, c in ipairs({ { "INT", "SIGINT", 130 }, { "TERM", "SIGTERM", 143 }, { "HUP", "SIGHUP", 129 } }) do
  test("SIG" .. c[1] .. " mid-run: summary, complete stream, exit " .. c[3], function(t)
    local r = run_and_signal("block", c[1])
    check_interrupted(t, r, c[2], c[3])
    local ev = r.events
    t:assert_eq(pv.outcome(ev, "block.test.lua", "before"), "passed")
    local o, p = pv.outcome(ev, "block.test.lua", "blocks")
    t:assert_eq(o, "skipped")
    t:assert_contains(p.reason, "interrupted by " .. c[2])
    o, p = pv.outcome(ev, "block.test.lua", "after")
    t:assert_eq(o, "skipped")
    t:assert_contains(p.reason, "interrupted by " .. c[2])
    t:assert_eq(pv.file_status(ev, "block.test.lua"), "failed")
  end)
end

test("SIGTERM with a VM up: its vm_shutdown comes before the file ends", function(t)
  local r = run_and_signal("vm", "TERM")
  check_interrupted(t, r, "SIGTERM", 143)
  local ev = r.events
  t:assert_eq(#pv.of(ev, "vm_spawned", "vm.test.lua"), 1)
  local downs = pv.of(ev, "vm_shutdown", "vm.test.lua")
  t:assert_eq(#downs, 1)
  t:assert_eq(downs[1].payload.vm_name, "sig")
  t:assert(downs[1].payload.duration_ns > 0, "uptime")
  t:assert_eq(pv.outcome(ev, "vm.test.lua", "blocks with a VM up"), "skipped")
end)

test("a runner killed with its VM up: the scheduler ends the VM in the stream", function(t)
  local r = pv.run({ "--timeout", "280s", pv.cases .. "/signals/vmcrash" })
  t:assert_eq(r.code, 1, r.stderr)
  local ev = r.events
  t:assert_eq(pv.check_guarantees(ev), nil)
  t:assert_eq(pv.file_status(ev, "crash.test.lua"), "crashed")
  local o, p = pv.outcome(ev, "crash.test.lua", "kills its own runner with a VM up")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, "SIGKILL")
  t:assert_eq(#pv.of(ev, "vm_shutdown", "crash.test.lua"), 1)
end)

test("a runner killed mid fixture build: the build still ends in the stream", function(t)
  local r = pv.run({ "--timeout", "280s", "--cache-dir", fresh("cache"), pv.cases .. "/signals/fixcrash" })
  t:assert_eq(r.code, 1, r.stderr)
  local ev = r.events
  t:assert_eq(pv.check_guarantees(ev), nil)
  t:assert_eq(#pv.of(ev, "fixture_build_started", "dies"), 1)
  local done = pv.of(ev, "fixture_build_done", "dies")
  t:assert_eq(#done, 1)
  t:assert_eq(done[1].payload.snapshot_bytes, 0, "nothing was cached")
  t:assert_eq(pv.file_status(ev, "uses.test.lua"), "crashed")
end)

test("--watch interrupted between runs exits 128+signal, not the last run's status", function(t)
  local dir, ev, err, efifo = fresh("watched"), fresh("wev"), fresh("werr"), fresh("wfifo")
  os.execute("mkdir -p " .. pv.q(dir) .. " && mkfifo " .. pv.q(efifo))
  local h = assert(io.open(dir .. "/w.test.lua", "w"))
  h:write('test("fails", function(t) t:fail("on purpose") end)\n')
  h:close()
  -- stderr goes through a FIFO: the line saying it waits for changes is the cue
  local out = sh(string.format(
    "%s -q --watch --save-events %s %s 2>%s >/dev/null </dev/null & pid=$!; " ..
    "while IFS= read -r l; do printf '%%s\\n' \"$l\" >> %s; " ..
    "case $l in *'for changes'*) kill -TERM $pid;; esac; done < %s; wait $pid; echo $?",
    pv.q(pv.bin), pv.q(ev), pv.q(dir), pv.q(efifo), pv.q(err), pv.q(efifo)))
  local stderr = pv.slurp(err)
  t:assert_eq(tonumber(out), 143, stderr)
  t:assert_contains(stderr, "interrupted by SIGTERM")
  t:assert_eq(pv.outcome(pv.decode(ev), "w.test.lua", "fails"), "failed", "the iteration ran")
end)

test("a SIGKILLed run's scratch dir is removed by the next run; a live run's is kept", function(t)
  -- provium killed outright leaves its scratch directory behind
  local r = run_and_signal("block", "KILL")
  t:assert_eq(r.ready, 0, r.stderr)
  t:assert_eq(r.code, 137)
  local left = scratch_dirs(r.rt)
  t:assert_eq(#left, 1, "the killed run's dir is there")

  -- a second run, blocked mid-run in the same runtime dir, keeps it alive
  local fifo, ev2, out2 = fresh("fifo"), fresh("ev"), fresh("out")
  os.execute("mkfifo " .. pv.q(fifo))
  local live = io.popen(string.format(
    "PV_SIGNAL_FIFO=%s XDG_RUNTIME_DIR=%s %s --timeout 280s --save-events %s %s >%s 2>&1 </dev/null & pid=$!; " ..
    "echo $pid; timeout 240 sh -c 'read l < \"$1\"' sh %s; echo ready $?; wait $pid; echo exit $?",
    pv.q(fifo), pv.q(r.rt), pv.q(pv.bin), pv.q(ev2), pv.q(pv.cases .. "/signals/block"), pv.q(out2), pv.q(fifo)))
  local pid = live:read("l")
  local ready = live:read("l")
  -- the live run swept the dead one's dir when it started
  local now = scratch_dirs(r.rt)
  -- a third run while the second is live: removes nothing of it
  local third = pv.run({ "--filter", "nothing-matches", pv.cases .. "/signals/block",
                         env = "XDG_RUNTIME_DIR=" .. pv.q(r.rt) })
  local after = scratch_dirs(r.rt)
  -- end the live run before asserting anything, so a failure cannot leave it behind
  os.execute("kill -TERM " .. pid)
  local exit = live:read("l")
  live:close()

  t:assert_eq(ready, "ready 0", pv.slurp(out2))
  t:assert_eq(#now, 1, table.concat(now, " "))
  t:assert(now[1] ~= left[1], "the dead run's dir is gone, the live run has its own")
  t:assert_eq(third.code, 2, "no files: " .. third.stderr)
  t:assert_eq(#after, 1, table.concat(after, " "))
  t:assert_eq(after[1], now[1], "the live run's dir is untouched")
  t:assert_eq(exit, "exit 143")
  t:assert_eq(#scratch_dirs(r.rt), 0)
end)
