-- VM tests on the built-in linux profile: the rng_seed boot option. A cold
-- boot gets it as provium.rng_seed=N, a warm one from the agent's identity
-- op; either way the agent writes /run/provium/rng_seed and puts
-- PROVIUM_RNG_SEED in every command's environment.

test("a given seed reaches the guest and vm:rng_seed()", function(t)
  local v <close> = provium:vm("seeded", "linux", { rng_seed = 12345 })
  t:assert_eq(v:rng_seed(), "12345", "known before the boot when given")
  v:boot()
  t:assert_eq(v:rng_seed(), "12345")
  t:assert_eq(v:run("cat /run/provium/rng_seed"):assert_ok().stdout, "12345\n")
  t:assert_eq(v:run("echo \"$PROVIUM_RNG_SEED\""):assert_ok().stdout, "12345\n")
  t:assert_eq(v:run("stat -c %a /run/provium/rng_seed"):assert_ok().stdout, "644\n")
end)

test("a cold boot has the seed on its kernel command line (a warm one, its template's)", function(t)
  local v <close> = provium:vm("seeded_cold", "linux", { rng_seed = 12345, boot = "cold" })
  v:boot()
  t:assert_contains(v:run("cat /proc/cmdline").stdout, "provium.rng_seed=12345")
  t:assert_eq(v:run("cat /run/provium/rng_seed"):assert_ok().stdout, "12345\n")
end)

test("a 64-bit seed as a string; vm:boot's replaces provium:vm's", function(t)
  local v <close> = provium:vm("big", "linux", { rng_seed = 7 })
  v:boot{ rng_seed = "18446744073709551615" }
  t:assert_eq(v:rng_seed(), "18446744073709551615")
  t:assert_eq(v:run("cat /run/provium/rng_seed; echo $PROVIUM_RNG_SEED"):assert_ok().stdout,
    "18446744073709551615\n18446744073709551615\n")
end)

test("the seed of provium's own word wins over one in cmdline_append", function(t)
  local v <close> = provium:vm("twice", "linux", { cmdline_append = "provium.rng_seed=1", rng_seed = 2 })
  v:boot()
  t:assert_eq(v:run("cat /run/provium/rng_seed"):assert_ok().stdout, "2\n")
end)

test("two boots without a seed get different random seeds", function(t)
  local a <close> = provium:vm("r1", "linux")
  local b <close> = provium:vm("r2", "linux")
  t:assert_eq(a:rng_seed(), nil, "not picked before the boot")
  provium:boot()
  local sa, sb = a:rng_seed(), b:rng_seed()
  t:assert(type(sa) == "string" and sa:match("^%d+$"), tostring(sa))
  t:assert_neq(sa, sb)
  t:assert_eq(a:run("cat /run/provium/rng_seed").stdout, sa .. "\n")
  t:assert_eq(b:run("echo $PROVIUM_RNG_SEED").stdout, sb .. "\n")
  -- a reset boots the same command line again: the seed stays
  a:reset()
  t:assert_eq(a:rng_seed(), sa)
  t:assert_eq(a:run("cat /run/provium/rng_seed").stdout, sa .. "\n")
end)

test("a bad rng_seed is one clear error naming the key", function(t)
  local allowed = "rng_seed must be an integer from 0 to 2^53, or a string of decimal digits up to 18446744073709551615"
  local cases = {
    { -1, "got -1" },
    { 1.5, "got 1.5" },
    { (1 << 53) + 1, "got 9007199254740993" },
    { "18446744073709551616", 'got "18446744073709551616"' },
    { "12a", 'got "12a"' },
    { "", 'got ""' },
    { " 1", 'got " 1"' },
    { "-1", 'got "-1"' },
    { true, "got boolean" },
  }
  for i, c in ipairs(cases) do
    local err = t:assert_raises(function() provium:vm("bad" .. i, "linux", { rng_seed = c[1] }) end)
    t:assert_contains(err, "provium:vm options: " .. allowed, "case " .. i)
    t:assert_contains(err, c[2], "case " .. i)
  end
  local v = provium:vm("later", "linux")
  t:assert_contains(t:assert_raises(function() v:boot{ rng_seed = {} } end), "vm:boot options: " .. allowed)
  t:assert_eq(v.state, "created", "a refused boot starts nothing")
  -- the edges are fine
  t:assert_eq(provium:vm("zero", "linux", { rng_seed = 0 }):rng_seed(), "0")
  t:assert_eq(provium:vm("top", "linux", { rng_seed = 1 << 53 }):rng_seed(), "9007199254740992")
  t:assert_eq(provium:vm("float", "linux", { rng_seed = 3.0 }):rng_seed(), "3")
end)
