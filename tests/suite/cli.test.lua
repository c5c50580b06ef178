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

test("--save-events appends; provium-coverage reads it", function(t)
  local f = pv.tmp("twice.events")
  for _ = 1, 2 do
    os.execute(string.format("%s -q --save-events %s %s >/dev/null 2>&1", pv.q(pv.bin), pv.q(f),
      pv.q(pv.cases .. "/filters/tags.test.lua")))
  end
  local code, out = sh(string.format("%s --from %s --by tags", pv.q(pv.coverage), pv.q(f)))
  t:assert_eq(code, 0, out)
  t:assert_contains(out, "net")
  local last = out:match("(total[^\n]*)\n$")
  t:assert_eq(last:gsub("%s+", " "), "total 6 0 2 8")
end)

test("--events-socket: a live consumer sees the whole run", function(t)
  local sock = pv.tmp("live.sock")
  local cov = pv.tmp("cov.out")
  -- the consumer retries until the producer's socket exists
  local consumer = string.format(
    "(for i in $(seq 100); do [ -S %s ] && break; sleep 0.05; done; %s --from-socket %s > %s 2>&1) &",
    pv.q(sock), pv.q(pv.coverage), pv.q(sock), pv.q(cov))
  os.execute(consumer .. string.format(
    " %s -q --events-socket %s %s >/dev/null 2>&1; wait",
    pv.q(pv.bin), pv.q(sock), pv.q(pv.cases .. "/live")))
  local out = pv.slurp(cov)
  t:assert_contains(out, "live")
  t:assert_eq(out:match("(total[^\n]*)\n$"):gsub("%s+", " "), "total 2 0 0 2")
  local f = io.open(sock)
  t:assert_eq(f, nil, "socket unlinked at exit")
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
  local f = io.popen(string.format(
    "%s -q --watch --save-events %s %s >/dev/null 2>&1 & pid=$!; " ..
    "for i in $(seq 100); do [ -s %s ] && break; sleep 0.05; done; sleep 0.3; " ..
    "printf 'test(\"second\", function(t) end)\\n' > %s; " ..
    "for i in $(seq 100); do grep -q second %s 2>/dev/null && break; sleep 0.05; done; sleep 0.3; " ..
    "kill -TERM $pid; wait $pid; echo $?",
    pv.q(pv.bin), pv.q(ev), pv.q(dir), pv.q(ev), pv.q(dir .. "/w.test.lua"), pv.q(ev)))
  local out = f:read("a")
  f:close()
  t:assert_eq(tonumber(out), 0, "a clean stop between runs: " .. out)
  local events = pv.decode(ev)
  t:assert_eq(pv.outcome(events, "w.test.lua", "second"), "passed")
  t:assert_eq(pv.outcome(events, "w.test.lua", "first"), nil, "the first iteration's events are gone")
end)
