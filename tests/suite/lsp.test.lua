-- provium lsp-setup's annotations against the bindings of this very runner
-- (docs/cli.md, "provium lsp-setup"): every name the runner binds has an
-- entry in src/runner/api_annotations.lua and every entry names something
-- bound; every options class has exactly the keys its calls accept (from
-- their "unknown key" errors); and what lsp-setup writes holds every class
-- and function of that file. The suite runs inside provium, so the tables
-- walked here are the ones any test file gets.
local pv = require("lib.pv")

local src = pv.here .. "/../../../src/runner/api_annotations.lua"
local api = dofile(src)

local classes = {}
for _, c in ipairs(api.classes) do classes[c.name] = c end

-- the names an annotation class gives its instances: methods and fields
local function annotated(c)
  local names = {}
  for _, m in ipairs(c.methods or {}) do names[m[1] or m.name] = true end
  for _, f in ipairs(c.fields or {}) do names[f[1]] = true end
  return names
end

-- the members the runner binds for `bind`, as a set of names
local function bound(bind)
  local kind, name = bind:match("^(%w+):(.+)$")
  local t
  if kind == "global" then
    t = _G[name]
  else
    local mt = debug.getregistry()[name]
    assert(mt, "no metatable " .. name .. " in the registry")
    t = mt.__index
    if type(t) == "function" then -- provium.vm: the methods table is an upvalue of its __index
      for i = 1, 20 do
        local n, v = debug.getupvalue(t, i)
        if not n then break end
        if type(v) == "table" and rawget(v, "boot") then t = v break end
      end
    end
  end
  assert(type(t) == "table", bind .. ": no table of members")
  local names = {}
  for k in pairs(t) do
    -- "_name": the runner's own (lnet.c's bridge plumbing), not API
    if type(k) == "string" and not k:match("^_") then names[k] = true end
  end
  return names
end

test("every binding has an annotation, and every annotation a binding", function(t)
  -- metatables made on first use
  local vm = provium:vm("lsp", "linux")
  vm:clock()
  local missing, stale, checked = {}, {}, 0
  for _, c in ipairs(api.classes) do
    if c.bind then
      checked = checked + 1
      local have, want = bound(c.bind), annotated(c)
      for k in pairs(have) do
        if not want[k] then missing[#missing + 1] = c.name .. "." .. k end
      end
      for _, m in ipairs(c.methods or {}) do
        local n = m[1] or m.name
        if not have[n] then stale[#stale + 1] = c.name .. ":" .. n end
      end
    end
  end
  for _, g in ipairs(api.globals) do
    if type(_G[g[1]]) ~= "function" then stale[#stale + 1] = "global " .. g[1] end
  end
  table.sort(missing)
  table.sort(stale)
  t:assert(checked >= 18, "classes with a binding: " .. checked)
  t:assert_eq(table.concat(missing, ", "), "", "bound but not in " .. src)
  t:assert_eq(table.concat(stale, ", "), "", "annotated but not bound")
end)

-- an options class's fields, with its parent's
local function option_keys(c)
  local keys = {}
  while c do
    for _, f in ipairs(c.fields or {}) do keys[#keys + 1] = f[1] end
    c = c.parent and classes[c.parent]
  end
  table.sort(keys)
  return table.concat(keys, ", ")
end

test("every options class has exactly the keys its calls accept", function(t)
  local vm = provium:vm("opts", "linux")
  local br = provium:bridge("lspbr", { subnet = "10.77.0.0/24" })
  -- what (opts_check's message prefix) -> a call that checks x
  local calls = {
    ["provium:vm options"] = function(x) provium:vm("o2", "linux", x) end,
    ["vm:boot options"] = function(x) vm:boot(x) end,
    ["provium:boot options"] = function(x) provium:boot(x) end,
    ["provium:claim"] = function(x) provium:claim(x) end,
    ["wait_until options"] = function(x) wait_until(function() return true end, x) end,
    ["vm:run options"] = function(x) vm:run("true", x) end,
    ["vm:run_async options"] = function(x) vm:run_async("true", x) end,
    ["vm:write_file options"] = function(x) vm:write_file("/a", "b", x) end,
    ["vm:mkdir options"] = function(x) vm:mkdir("/a", x) end,
    ["vm:open_file options"] = function(x) vm:open_file("/a", x) end,
    ["vm:tail_file options"] = function(x) vm:tail_file("/a", x) end,
    ["vm:push_file options"] = function(x) vm:push_file(src, "/a", x) end,
    ["vm:ioctl options"] = function(x) vm:ioctl(3, 1, 0, x) end,
    ["vm:spawn_worker options"] = function(x) vm:spawn_worker(x) end,
    ["provium.vm_fixture options"] = function(x) provium.vm_fixture("nosuch", x) end,
    ["provium.lab_fixture options"] = function(x) provium.lab_fixture("nosuch", x) end,
    ["provium:bridge options"] = function(x) provium:bridge("lspbr2", x) end,
    ["bridge:attach options"] = function(x) br:attach(vm, x) end,
  }
  -- checked after a boot, in the VM suites (tests/vm): a console needs a running VM
  local needs_vm = { ["console:read options"] = true, ["console:write options"] = true,
    ["stream options"] = true, ["file:tail_stream options"] = true, ["meta"] = true }
  local unprobed, n = {}, 0
  for _, c in ipairs(api.classes) do
    for _, what in ipairs(c.options and c.what or {}) do
      local call = calls[what]
      if call then
        local ok, err = pcall(call, { zz_not_a_key = 1 })
        t:assert(not ok, what .. " took an unknown key")
        err = tostring(err)
        local valid = err:match("unknown key \"zz_not_a_key\" %(valid keys: ([^)]*)%)")
        if err:match("unknown key \"zz_not_a_key\" %(it takes none%)") then valid = "" end
        t:assert(valid, what .. ": " .. err)
        local list = {}
        for k in valid:gmatch("[^, ]+") do list[#list + 1] = k end
        table.sort(list)
        t:assert_eq(option_keys(c), table.concat(list, ", "), c.name .. " vs " .. what)
        n = n + 1
      elseif not needs_vm[what] then
        unprobed[#unprobed + 1] = what
      end
    end
  end
  t:assert_eq(table.concat(unprobed, ", "), "", "options calls this test has no probe for")
  t:assert(n >= 18, "options checked: " .. n)
end)

test("lsp-setup writes every class and function of the annotations", function(t)
  local dir = pv.tmp("lsp")
  os.execute("mkdir -p " .. pv.q(dir))
  local r = pv.run({ "lsp-setup", dir, no_save = true })
  t:assert_eq(r.code, 0, r.stderr)
  local types = pv.slurp(dir .. "/.provium-meta/types.lua")
  for _, c in ipairs(api.classes) do
    t:assert_contains(types, "---@class " .. c.name, c.name)
  end
  for _, g in ipairs(api.globals) do
    t:assert_contains(types, "function " .. g[1] .. "(", g[1])
  end
  local luarc = pv.slurp(dir .. "/.luarc.json")
  t:assert_contains(luarc, ".provium-meta")
end)
