-- Every options table of the API rejects a key it does not know, before doing anything.
local vm = provium:vm("box", "linux")   -- created, never booted

test("vm opts", function(t) provium:vm("other", "linux", { memory = "128M", cpu = 1 }) end)
test("vm:boot opts", function(t) vm:boot({ timout = "10s" }) end)
test("provium:boot opts", function(t) provium:boot({ timeout = "10s", wait = true }) end)
test("vm:run opts", function(t) vm:run("true", { evn = { A = "1" } }) end)
test("vm:run_async opts", function(t) vm:run_async("true", { stdn = "x" }) end)
test("vm:write_file opts", function(t) vm:write_file("/tmp/x", "data", { apend = true }) end)
test("vm:mkdir opts", function(t) vm:mkdir("/tmp/d", { parent = true }) end)
test("wait_until opts", function(t) wait_until(function() return true end, { timeuot = "1s" }) end)
test("vm_fixture opts", function(t) provium.vm_fixture("nope", { nmae = "x" }) end)
test("lab_fixture opts", function(t) provium.lab_fixture("nope", { name = "x" }) end)
test("a non-string key", function(t) wait_until(function() return true end, { [1] = "x" }) end)
test("opts must be a table", function(t) vm:run("true", "fast") end)
test("valid opts still work", function(t)
  t:assert_eq(wait_until(function() return 5 end, { timeout = "1s", interval = "10ms", desc = "five" }), 5)
end)
