-- Helpers for the project's own suites: run the real provium binary on a
-- case directory and read back what it emitted, decoded by python3-msgpack.
local M = {}

M.bin = os.getenv("PROVIUM_BIN") or ((os.getenv("PWD") or ".") .. "/build/provium")
M.cases = os.getenv("PROVIUM_CASES") or "tests/cases"
M.here = os.getenv("PROVIUM_SUITE_LIB") or "tests/suite/lib"
M.coverage = os.getenv("PROVIUM_COVERAGE_BIN") or "build/provium-coverage"

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end
M.slurp = slurp

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.q = q

local tmpdir
-- removed when the runner closes its Lua state at the end of the file
M._cleanup = setmetatable({}, { __gc = function()
  if tmpdir then os.execute("rm -rf '" .. tmpdir .. "'") end
end })
local function tmp(name)
  if not tmpdir then
    local p = io.popen("mktemp -d /tmp/pvsuite.XXXXXX")
    tmpdir = p:read("l")
    p:close()
  end
  return tmpdir .. "/" .. name
end
M.tmp = tmp

local seq = 0
-- run{args..., env = "...", stdin = "..."} -> {code, stdout, stderr, events}
function M.run(args)
  seq = seq + 1
  local ev, out, err = tmp("ev" .. seq), tmp("out" .. seq), tmp("err" .. seq)
  local parts, sub = {}, ""
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  -- a subcommand comes first: provium fixture build --save-events X ...
  if (args[1] == "fixture" or args[1] == "image") and args[2] then
    sub = table.remove(parts, 1) .. " " .. table.remove(parts, 1) .. " "
  end
  local save = args.no_save and "" or ("--save-events " .. q(ev) .. " ")
  local cmd = string.format("%s%s %s%s%s >%s 2>%s </dev/null", args.env and (args.env .. " ") or "",
    q(M.bin), sub, save, table.concat(parts, " "), q(out), q(err))
  local ok, how, code = os.execute(cmd)
  local r = { code = how == "exit" and code or 128 + code, stdout = slurp(out), stderr = slurp(err) }
  if not args.no_save then r.events = M.decode(ev) end
  return r
end

-- A session of the real binary on a pseudo-terminal (lib/pty_drive.py):
-- steps are its lines (expect/send/timeout/sleep/exit), args provium's.
-- TERM=xterm, so the caller's terminal decides nothing; env is added before
-- it, dir (default: here) is the directory it runs in. -> ok, transcript.
local pty_seq = 0
function M.pty(t, steps, args, env, dir)
  pty_seq = pty_seq + 1
  local file = tmp("pty-steps" .. pty_seq)
  local f = assert(io.open(file, "w"))
  f:write(table.concat(steps, "\n"), "\n")
  f:close()
  local quoted = {}
  for _, a in ipairs(args) do quoted[#quoted + 1] = q(a) end
  local cmd = string.format("%sTERM=xterm %s /usr/bin/python3 %s %s -- %s %s 2>&1", dir and ("cd " .. q(dir) .. " && ") or "",
    env or "", q(M.here .. "/pty_drive.py"), q(file), q(M.bin), table.concat(quoted, " "))
  local p = io.popen(cmd)
  local out = p:read("a")
  local ok = p:close()
  if not ok then t:log(out) end
  return ok, out
end

function M.decode(path)
  local f = io.open(path, "rb")
  if not f then return {} end -- the run never got as far as emitting
  f:close()
  local p = io.popen(string.format("/usr/bin/python3 %s %s 2>&1", q(M.here .. "/events2lua.py"), q(path)))
  local src = p:read("a")
  local ok = p:close()
  if not ok then error("python3-msgpack could not decode " .. path .. ": " .. src) end
  return assert(load(src, "=events"))()
end

-- Events of one kind (optionally for one path/file).
function M.of(events, kind, path)
  local r = {}
  for _, e in ipairs(events) do
    if e.kind == kind and (not path or e.payload.path == path or e.payload.file == path) then
      r[#r + 1] = e
    end
  end
  return r
end

-- The terminal event of a test, by file and name.
function M.outcome(events, path, name)
  for _, e in ipairs(events) do
    if (e.kind == "test_passed" or e.kind == "test_failed" or e.kind == "test_skipped")
        and e.payload.path == path and e.payload.name == name then
      return e.kind:sub(6), e.payload
    end
  end
end

function M.file_status(events, path)
  for _, e in ipairs(events) do
    if e.kind == "file_completed" and e.payload.path == path then return e.payload.status end
  end
end

-- Checks every ordering guarantee of the event reference; returns nil or a complaint.
function M.check_guarantees(events)
  local first_dispatch, discovered = nil, {}
  local files, tests, claims, builds, vms = {}, {}, {}, {}, {}
  for i, e in ipairs(events) do
    local p = e.payload
    if e.kind == "file_discovered" then
      if first_dispatch then return "file_discovered after the first dispatch: " .. p.path end
      discovered[p.path] = true
    elseif e.kind == "file_dispatched" then
      first_dispatch = first_dispatch or i
      local f = files[p.path] or {}
      if f.dispatched then return "dispatched twice: " .. p.path end
      f.dispatched = true
      files[p.path] = f
    elseif e.kind == "file_blocked" then
      local f = files[p.path] or {}
      if f.dispatched then return "file_blocked after dispatch: " .. p.path end
      files[p.path] = f
    elseif e.kind == "file_completed" then
      local f = files[p.path] or {}
      if f.completed then return "completed twice: " .. p.path end
      f.completed = true
      files[p.path] = f
      for k, t in pairs(tests) do
        if t.path == p.path and t.state ~= "done" then return "test still open at file end: " .. k end
      end
      for k, v in pairs(vms) do
        if v.n > 0 and v.file == p.path then return "VM still running at file end: " .. k end
      end
    elseif e.kind == "test_started" then
      local k = p.path .. "::" .. p.name
      if tests[k] then return "test started twice: " .. k end
      if type(p.meta) ~= "table" then return "test_started without meta: " .. k end
      tests[k] = { path = p.path, state = "started" }
    elseif e.kind == "test_passed" or e.kind == "test_failed" or e.kind == "test_skipped" then
      local k = p.path .. "::" .. p.name
      if not tests[k] or tests[k].state ~= "started" then return e.kind .. " without an open test_started: " .. k end
      tests[k].state = "done"
    elseif e.kind == "vm_spawned" then
      -- every vm_spawned has one vm_shutdown after it, before its file's end
      local k = p.file .. "::" .. p.vm_name
      vms[k] = vms[k] or { file = p.file, n = 0 }
      vms[k].n = vms[k].n + 1
    elseif e.kind == "vm_shutdown" then
      local k = p.file .. "::" .. p.vm_name
      if not vms[k] or vms[k].n == 0 then return "vm_shutdown without a running vm_spawned: " .. k end
      vms[k].n = vms[k].n - 1
    elseif e.kind == "fixture_build_started" then
      if builds[p.path] then return "fixture build started twice: " .. p.path end
      builds[p.path] = true
    elseif e.kind == "fixture_build_done" then
      if not builds[p.path] then return "fixture_build_done without a start: " .. p.path end
      builds[p.path] = nil
    elseif e.kind == "claim_acquired" then
      if claims[p.path] then return "claim acquired twice: " .. p.path end
      claims[p.path] = "held"
    elseif e.kind == "claim_released" then
      if claims[p.path] ~= "held" then return "claim released without acquire: " .. p.path end
      claims[p.path] = "released"
    end
  end
  for path in pairs(discovered) do
    if not (files[path] and files[path].completed) then return "no file_completed for " .. path end
  end
  for path in pairs(builds) do return "fixture build never done: " .. path end
  for k, v in pairs(vms) do
    if v.n > 0 then return "VM never shut down: " .. k end
  end
  for path, st in pairs(claims) do
    if st ~= "released" then return "claim never released: " .. path end
  end
  return nil
end

function M.count(events, kind)
  return #M.of(events, kind)
end

return M
