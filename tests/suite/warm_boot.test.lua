-- Warm boot, seen from outside (docs/lua-api.md, "Warm boot"): nested runs
-- of tests/cases/warm with a cache of their own. The first boot of a
-- template key is cold and saves the template; later ones resume it, in the
-- same run and the next; --cold-boot, boot = "cold" and another key boot
-- cold; a template that does not resume is deleted, with a warning, and
-- made again.
local pv = require("lib.pv")

local cases = pv.cases .. "/warm"
local cache = pv.tmp("warm-cache")

local function run(file, env, extra)
  local args = { "--psi-threshold", "0", "--cache-dir", cache, cases .. "/" .. file, env = env }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  return pv.run(args)
end

local function templates()
  local r = pv.run({ "fixture", "list", "--cache-dir", cache, no_save = true })
  local keys = {}
  for key, what in r.stdout:gmatch("\n(%x+)%s+%S+%s+.-%s(template:%S+)") do keys[#keys + 1] = key .. " " .. what end
  return keys, r.stdout
end

local function passed(t, r, what)
  t:assert_eq(r.code, 0, what .. ":\n" .. r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "test_passed"), 1, what)
end

test("the first boot saves the template, every later one resumes it", function(t)
  passed(t, run("boots.test.lua", "WANT=cold,warm"), "an empty cache")
  local keys, listing = templates()
  t:assert_eq(#keys, 1, listing)
  t:assert_contains(keys[1], "template:linux")
  t:assert(not listing:find("(stale)", 1, true), listing)
  passed(t, run("boots.test.lua", "WANT=warm,warm"), "the next run")
  passed(t, run("boots.test.lua", "WANT=cold,cold", { "--cold-boot" }), "--cold-boot")
  passed(t, run("boots.test.lua", "WANT=cold,cold BOOT=cold"), "boot = cold")
  t:assert_eq(#templates(), 1, "nothing new saved by cold boots")
end)

test("the template is keyed on the VM's memory: another size boots cold once", function(t)
  passed(t, run("boots.test.lua", "WANT=cold,warm MEM=192M"), "192M: its own template")
  passed(t, run("boots.test.lua", "WANT=warm,warm MEM=192M"), "192M again")
  t:assert_eq(#templates(), 2)
end)

test("a template that does not resume is deleted with a warning and saved again", function(t)
  passed(t, run("boots.test.lua", "WANT=warm,warm"), "warm before the damage")
  local keys = templates()
  local damaged = 0
  for _, k in ipairs(keys) do
    local key = k:match("^(%x+)")
    local p = io.popen("ls -d " .. pv.q(cache) .. "/" .. key .. "*/ 2>/dev/null")
    for d in p:lines() do
      -- the snapshot cut short: the manifest's size no longer matches
      os.execute("truncate -s 1000 " .. pv.q(d .. "vm0.zst"))
      damaged = damaged + 1
    end
    p:close()
  end
  t:assert(damaged >= 1, "damaged " .. damaged)
  local r = run("boots.test.lua", "WANT=cold,warm")
  passed(t, r, "after the damage")
  t:assert_contains(r.stderr, "provium: warning: boot template ")
  t:assert_contains(r.stderr, "deleted, booting cold and saving it again")
  passed(t, run("boots.test.lua", "WANT=warm,warm"), "saved again")
end)

test("warm VMs are distinct machines; a cold one boots on its own", function(t)
  local r = run("identity.test.lua")
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(pv.count(r.events, "test_passed"), 3, r.stdout)
end)

test("boot is \"warm\" or \"cold\": anything else is one clear error", function(t)
  local r = run("boots.test.lua", "BOOT=lukewarm")
  t:assert_eq(r.code, 1)
  t:assert_contains(r.stdout, 'provium:vm options: boot must be "warm" (resume the profile\'s booted template, '
    .. 'the default) or "cold" (boot the kernel), got "lukewarm"')
  r = pv.run({ "list", "--cold-boot", cases, no_save = true })
  t:assert_eq(r.code, 2)
  t:assert_contains(r.stderr, "--cold-boot goes with what boots VMs")
end)
