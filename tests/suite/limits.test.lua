-- Limits of a runner, seen from outside: deep values, its Lua heap, test
-- timeouts that user code tries to swallow, misspelt options, provium.lua.
local pv = require("lib.pv")
local cases = pv.cases .. "/limits"

local function failed_with(t, ev, file, name, needle)
  local o, p = pv.outcome(ev, file, name)
  t:assert_eq(o, "failed", file .. " :: " .. name)
  t:assert_contains(p.reason, needle, file .. " :: " .. name)
  return p
end

test("deep values: meta up to 32 levels, clear errors beyond, no crash", function(t)
  local r = pv.run({ cases .. "/deep" })
  local ev = r.events
  t:assert_eq(pv.check_guarantees(ev), nil)
  t:assert_eq(pv.file_status(ev, "ok.test.lua"), "failed", r.stderr)
  t:assert_eq(pv.outcome(ev, "ok.test.lua", "meta 11 deep"), "passed")
  t:assert_eq(pv.outcome(ev, "ok.test.lua", "meta 32 deep"), "passed")
  t:assert_eq(pv.outcome(ev, "ok.test.lua", "assert_eq on tables 200 deep"), "passed")
  t:assert_eq(pv.outcome(ev, "ok.test.lua", "assert_contains with deep elements"), "passed")
  failed_with(t, ev, "ok.test.lua", "assert_eq on tables 1000 deep is an error, not a crash",
    "nested deeper than 200 levels")
  failed_with(t, ev, "ok.test.lua", "failure message of a deep table", "assert_eq failed: {d = {d = {d = {...}}}} ~= {d = {d = {d = {...}}}}")
  -- a rendering longer than Lua's buffer used to crash the runner
  local p = failed_with(t, ev, "ok.test.lua", "failure message of wide tables", "assert_eq failed: {")
  t:assert_contains(p.reason, '"' .. string.rep("x", 390) .. '"')
  t:assert_contains(p.reason, '{n = {"' .. string.rep("y", 390) .. '", {"' .. string.rep("z", 390) .. '"}}}')
  -- the 32-level meta travels unchanged in the events
  _, p = pv.outcome(ev, "ok.test.lua", "meta 32 deep")
  local m, n = p.meta, 0
  while m.d do m, n = m.d, n + 1 end
  t:assert_eq(n, 32)
  for _, f in ipairs({ "d33.test.lua", "d200.test.lua" }) do
    t:assert_eq(pv.file_status(ev, f), "failed", f)
    failed_with(t, ev, f, "<load>", "nested deeper than 32 levels")
    failed_with(t, ev, f, "<load>", f .. ":1:")
  end
  failed_with(t, ev, "array.test.lua", "<load>", "meta.a[1][1]")
  t:assert_eq(#pv.of(ev, "file_completed"), 4)
  for _, e in ipairs(pv.of(ev, "file_completed")) do t:assert(e.payload.status ~= "crashed", e.payload.path) end
end)

test("Lua memory limit: the test fails, the file goes on, the stream stays valid", function(t)
  local r = pv.run({ cases .. "/memory" })
  local ev = r.events
  t:assert_eq(pv.check_guarantees(ev), nil)
  t:assert_eq(r.code, 1, r.stderr)
  local f = "hog.test.lua"
  t:assert_eq(pv.file_status(ev, f), "failed")
  failed_with(t, ev, f, "allocates without bound", "Lua memory limit exceeded (256MiB")
  t:assert_eq(pv.outcome(ev, f, "runs after the hog"), "passed")
  t:assert_eq(pv.outcome(ev, f, "the limit message can be caught by pcall"), "passed")
  failed_with(t, ev, f, "keeps a hoard in a global", "Lua memory limit exceeded")
  failed_with(t, ev, f, "runs after the hoard", "Lua memory limit exceeded")
  t:assert_eq(pv.outcome(ev, "claim.test.lua", "uses 300 MiB under a 400M claim"), "passed")
  t:assert_eq(pv.file_status(ev, "claim.test.lua"), "passed")
  failed_with(t, ev, "file_scope.test.lua", "<load>", "Lua memory limit exceeded")
  t:assert_eq(pv.file_status(ev, "file_scope.test.lua"), "failed")
end)

test("lua_memory in provium.lua sets the limit", function(t)
  local dir = pv.tmp("luamem")
  os.execute("mkdir -p " .. pv.q(dir))
  local cfg = io.open(dir .. "/provium.lua", "w")
  cfg:write('return { lua_memory = "64M" }\n')
  cfg:close()
  local tf = io.open(dir .. "/m.test.lua", "w")
  tf:write([[
test("100 MiB", function(t)
  local keep = {}
  for i = 1, 100 do keep[i] = string.rep("x", 1 << 20) .. i end
end)
test("30 MiB", function(t)
  local keep = {}
  for i = 1, 30 do keep[i] = string.rep("x", 1 << 20) .. i end
end)
]])
  tf:close()
  local r = pv.run({ "--config", dir .. "/provium.lua", dir })
  failed_with(t, r.events, "m.test.lua", "100 MiB", "Lua memory limit exceeded (64MiB")
  t:assert_eq(pv.outcome(r.events, "m.test.lua", "30 MiB"), "passed")
end)

test("runners and their VMs go to the OOM killer before the scheduler", function(t)
  local dir = pv.tmp("oom")
  os.execute("mkdir -p " .. pv.q(dir))
  local tf = io.open(dir .. "/o.test.lua", "w")
  tf:write([[
test("score", function(t)
  local f = io.open("/proc/self/oom_score_adj")
  t:assert_eq(f:read("l"), "500", "the runner's oom_score_adj")
  f:close()
end)
]])
  tf:close()
  local r = pv.run({ dir })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
end)

test("a caught test timeout is raised again: the test ends at its meta.timeout", function(t)
  local r = pv.run({ cases .. "/timeout" })
  local ev = r.events
  local f = "pcall.test.lua"
  t:assert_eq(pv.check_guarantees(ev), nil)
  t:assert_eq(pv.file_status(ev, f), "failed", r.stderr)
  for _, name in ipairs({ "pcall loop", "xpcall loop sees the message", "coroutine loop", "assert_raises loop",
                          "wait_until loop" }) do
    local p = failed_with(t, ev, f, name, "test timed out after 1s (meta.timeout)")
    -- generous: the point is "not the file timeout of 120s"
    t:assert(p.duration_ns < 60e9, name .. " took " .. p.duration_ns)
  end
  -- the log of a failed test is in the human output
  t:assert_contains(r.stdout, "handler got: test timed out after 1s (meta.timeout)")
  t:assert_eq(pv.outcome(ev, f, "next test still runs"), "passed")
  t:assert_eq(pv.outcome(ev, f, "an assertion caught by pcall reads as its message"), "passed")
end)

test("unknown option keys are errors naming the key and the valid ones", function(t)
  local r = pv.run({ cases .. "/opts" })
  local ev = r.events
  t:assert_eq(pv.check_guarantees(ev), nil)
  t:assert_eq(#pv.of(ev, "vm_spawned"), 0)
  failed_with(t, ev, "vm_typo.test.lua", "<load>",
    'vm_typo.test.lua:2: provium:vm options: unknown key "memroy" (did you mean "memory"? valid keys: memory, cpus, disks, share, cmdline, cmdline_append, files, initial_time, agent_timeout, rng_seed, boot)')
  failed_with(t, ev, "claim.test.lua", "<load>",
    'provium:claim: unknown key "cpu" (did you mean "cpus"? valid keys: memory, cpus)')
  failed_with(t, ev, "meta.test.lua", "<load>", 'meta: unknown key "timout" (did you mean "timeout"?')
  t:assert_eq(pv.outcome(ev, "meta_free.test.lua", "free metadata keys pass"), "passed")
  local f = "every.test.lua"
  local want = {
    ["vm opts"] = 'unknown key "cpu" (did you mean "cpus"? valid keys: memory, cpus, disks, share, cmdline, cmdline_append, files, initial_time, agent_timeout, rng_seed, boot)',
    ["vm:boot opts"] = 'vm:boot options: unknown key "timout" (did you mean "timeout"? valid keys: timeout, cmdline, cmdline_append, files, initial_time, agent_timeout, rng_seed, boot)',
    ["provium:boot opts"] = 'provium:boot options: unknown key "wait" (valid keys: timeout)',
    ["vm:run opts"] = 'vm:run options: unknown key "evn" (did you mean "env"? valid keys: stdin, env, env_clear, cwd, timeout, uid, gid, groups)',
    ["vm:run_async opts"] = 'vm:run_async options: unknown key "stdn" (did you mean "stdin"?',
    ["vm:write_file opts"] = 'vm:write_file options: unknown key "apend" (did you mean "append"? valid keys: append, mode)',
    ["vm:mkdir opts"] = 'vm:mkdir options: unknown key "parent" (did you mean "parents"? valid keys: parents, mode)',
    ["wait_until opts"] = 'wait_until options: unknown key "timeuot" (did you mean "timeout"? valid keys: timeout, interval, desc)',
    ["vm_fixture opts"] = 'provium.vm_fixture options: unknown key "nmae" (did you mean "name"? valid keys: name)',
    ["lab_fixture opts"] = 'provium.lab_fixture options: unknown key "name" (it takes none)',
    ["a non-string key"] = "wait_until options: keys must be names, got number key 1",
    ["opts must be a table"] = "vm:run options must be a table, got string",
  }
  for name, needle in pairs(want) do
    local p = failed_with(t, ev, f, name, needle)
    t:assert_contains(p.reason, "every.test.lua:", name)
  end
  t:assert_eq(pv.outcome(ev, f, "valid opts still work"), "passed")
end)

test("provium.lua: os.exit, profiles.linux and bad profiles are load-time errors", function(t)
  local dir = pv.tmp("cfgerr")
  os.execute("mkdir -p " .. pv.q(dir))
  local tf = io.open(dir .. "/x.test.lua", "w")
  tf:write('test("x", function(t) end)\n')
  tf:close()
  local function with(cfg)
    local f = io.open(dir .. "/provium.lua", "w")
    f:write(cfg)
    f:close()
    return pv.run({ "--config", dir .. "/provium.lua", dir })
  end
  local r = with("os.exit(0)\n")
  t:assert_eq(r.code, 2, r.stdout .. r.stderr)
  t:assert_contains(r.stderr, "provium.lua:1: os.exit is not allowed in provium.lua")
  t:assert_eq(#pv.of(r.events, "test_started"), 0)
  r = with('return { profiles = { linux = { memory = "1G" } } }\n')
  t:assert_eq(r.code, 2, r.stdout .. r.stderr)
  t:assert_contains(r.stderr, "profiles.linux: \"linux\" is a built-in profile")
  r = with('return { profiles = { custom = { kernel = "/nonexistent/vmlinuz", initrd = "/nonexistent/initrd" } } }\n')
  t:assert_eq(r.code, 2, r.stdout .. r.stderr)
  t:assert_contains(r.stderr, "profiles.custom.kernel: /nonexistent/vmlinuz: No such file or directory")
end)
