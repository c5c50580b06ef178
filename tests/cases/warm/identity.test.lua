-- Run by tests/suite/warm_boot.test.lua: VMs resumed from one template are
-- each their own machine (docs/lua-api.md, "Warm boot"): hostname, MAC and
-- address, clock, randomness and rng_seed; what they share with the
-- template (the kernel's boot_id) and what a cold boot has of its own.
local maker = provium:vm("maker", "linux", { memory = "128M" })
local a = provium:vm("a", "linux", { memory = "128M" })
local b = provium:vm("b", "linux", { memory = "128M" })
local c = provium:vm("c", "linux", { memory = "128M", boot = "cold" })
local lan = provium:bridge("lan", { seed = 3 })
lan:attach({ maker, a, b, c })
maker:boot() -- the template (or a warm boot itself, when the cache has one)
provium:boot()

local function host_ns()
  local p = io.popen("date +%s%N")
  local s = p:read("l")
  p:close()
  return tonumber(s)
end

test("warm VMs of one template are distinct machines", function(t)
  t:assert_eq(a.boot_kind, "warm")
  t:assert_eq(b.boot_kind, "warm")
  t:assert_eq(c.boot_kind, "cold")
  local seen = {}
  for _, v in ipairs({ maker, a, b, c }) do
    t:assert_eq(v:run("hostname"):assert_ok().stdout, v.name .. "\n")
    t:assert_eq(v:run("cat /sys/class/net/eth0/address"):assert_ok().stdout, v:mac() .. "\n")
    t:assert_contains(v:run("ip -4 addr show eth0"):assert_ok().stdout, v:ip() .. "/24")
    local uuid = v:run("cat /proc/sys/kernel/random/uuid"):assert_ok().stdout
    local bytes = v:run("head -c 16 /dev/urandom | od -An -tx1"):assert_ok().stdout
    t:assert_eq(seen[uuid], nil, "a UUID drawn twice")
    t:assert_eq(seen[bytes], nil, "random bytes drawn twice")
    seen[uuid], seen[bytes] = true, true
    t:assert_eq(v:run("cat /run/provium/rng_seed"):assert_ok().stdout, v:rng_seed() .. "\n")
    t:assert_eq(v:run("echo $PROVIUM_RNG_SEED"):assert_ok().stdout, v:rng_seed() .. "\n")
  end
  t:assert_neq(a:rng_seed(), b:rng_seed())
  for _ = 1, 3 do
    if a:run("ping -c 1 -W 3 b"):ok() then return end
  end
  t:fail("a does not reach b by name")
end)

test("a warm VM's clock is the host's", function(t)
  -- the guest's clock read between two readings of the host's; the agent's
  -- round trip bounds the window (best of five under a loaded host)
  local best
  for _ = 1, 5 do
    local before = host_ns()
    local g = math.floor(a:clock():get() * 1e9)
    local after = host_ns()
    local off = g < before and before - g or g > after and g - after or 0
    if not best or off < best then best = off end
  end
  t:assert(best <= 50e6, ("the warm guest's clock is %d ms off the host's"):format(best // 1e6))
end)

test("warm VMs share the template's boot log; a cold one has its own", function(t)
  -- the kernel printed its command line, rng_seed word included, at boot
  local seed_in_log = function(v)
    return v:run("dmesg | grep -o 'provium.rng_seed=[0-9]*' | head -n 1"):assert_ok().stdout
  end
  local made = seed_in_log(maker)
  t:assert_eq(seed_in_log(a), made, "a's boot log is its template's")
  t:assert_eq(seed_in_log(b), made, "b's too")
  t:assert_eq(seed_in_log(c), "provium.rng_seed=" .. c:rng_seed() .. "\n", "a cold boot logs its own")
  -- boot_id is drawn when first read, after the template was saved
  local id = function(v) return v:run("cat /proc/sys/kernel/random/boot_id"):assert_ok().stdout end
  t:assert_neq(id(a), id(b))
end)
