-- The bridge API without booting a guest: what is checked when a test
-- declares its network (addresses, forwards, bad input). What guests see is
-- in tests/vm/network.test.lua and tests/vm/uplink.test.lua.
local a = provium:vm("a", "linux", { memory = "128M" })
local b = provium:vm("b", "linux", { memory = "128M" })
local loner = provium:vm("loner", "linux", { memory = "128M" })
local lan = provium:bridge("lan", { subnet = "10.50.0.0/24" })
lan:attach(a)

local function raises_with(t, fn, text)
  t:assert_contains(tostring(t:assert_raises(fn)), text)
end

test("the gateway and DNS relay addresses are reserved", function(t)
  raises_with(t, function() lan:attach(b, { ip = "10.50.0.2/24" }) end, "gateway (.2) or DNS relay (.3)")
  raises_with(t, function() lan:attach(b, { ip = "10.50.0.3/24" }) end, "gateway (.2) or DNS relay (.3)")
  t:assert_eq(#lan:members(), 1, "a refused attach attaches nothing")
end)

test("a forward exists before boot, one per guest port", function(t)
  local addr = a:forward(22)
  t:assert(addr:match("^127%.0%.0%.1:%d+$"), addr)
  t:assert_eq(a:forward(22, lan), addr)
  t:assert(a:forward(23) ~= addr)
  t:assert(not lan:uplink_enabled())
end)

test("forward: bad input", function(t)
  raises_with(t, function() loner:forward(80) end, "VM 'loner' is on no bridge")
  raises_with(t, function() a:forward(0) end, "the guest port must be 1-65535")
  raises_with(t, function() a:forward("http") end, "number expected")
  raises_with(t, function() a:forward(80, "wan") end, "VM 'a' is not on bridge 'wan'")
end)
