-- Names the event stream cannot carry: a test file whose name is not UTF-8
-- used to crash its runner, vanish from the results and exit 0.
local pv = require("lib.pv")

local function tree_with_bad_name()
  local dir = pv.tmp("badname")
  os.execute("mkdir -p " .. pv.q(dir))
  for _, name in ipairs({ "ok.test.lua", "caf\xe9.test.lua" }) do
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write('test("runs", function(t) end)\n')
    f:close()
  end
  return dir
end

test("a test file whose name is not UTF-8: exit 2, one line naming it, nothing runs", function(t)
  local dir = tree_with_bad_name()
  local r = pv.run({ dir })
  t:assert_eq(r.code, 2, r.stdout .. r.stderr)
  local lines = {}
  for l in r.stderr:gmatch("[^\n]+") do lines[#lines + 1] = l end
  t:assert_eq(#lines, 1, r.stderr)
  t:assert_contains(lines[1], 'caf\\xe9.test.lua" is not valid UTF-8')
  t:assert_eq(pv.count(r.events, "file_dispatched"), 0, "nothing ran")
  t:assert_eq(r.stdout:find("passed"), nil, "no summary pretending the run happened: " .. r.stdout)
end)

test("provium list refuses it the same way", function(t)
  local dir = tree_with_bad_name()
  local r = pv.run({ "list", dir, no_save = true })
  t:assert_eq(r.code, 2, r.stderr)
  t:assert_contains(r.stderr, 'caf\\xe9.test.lua" is not valid UTF-8')
end)

test("--filter leaving it out runs the rest", function(t)
  local dir = tree_with_bad_name()
  local r = pv.run({ "--filter", "ok", dir })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(pv.outcome(r.events, "ok.test.lua", "runs"), "passed")
end)

test("a fixture reference that is not UTF-8: exit 2 naming the file and line", function(t)
  local dir = pv.tmp("badref")
  os.execute("mkdir -p " .. pv.q(dir))
  local f = assert(io.open(dir .. "/r.test.lua", "w"))
  f:write('-- comment\nlocal v = provium.vm_fixture("db\\255")\ntest("x", function(t) end)\n')
  f:close()
  local r = pv.run({ dir })
  t:assert_eq(r.code, 2, r.stderr)
  t:assert_contains(r.stderr, "r.test.lua: line 2:")
  t:assert_contains(r.stderr, '"db\\xff" is not valid UTF-8')
end)

test("--tag that is not UTF-8 is a usage error", function(t)
  local r = pv.run({ "--tag", "n\xe9t", pv.cases .. "/filters", no_save = true })
  t:assert_eq(r.code, 2, r.stderr)
  t:assert_contains(r.stderr, "--tag")
  t:assert_contains(r.stderr, "UTF-8")
end)
