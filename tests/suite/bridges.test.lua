-- The bridge API without booting a guest: what is checked when a test
-- declares its network (addresses, forwards, bad input). What guests see is
-- in tests/vm/network.test.lua and tests/vm/uplink.test.lua.
local pv = require("lib.pv")
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

test("captures without a path are kept when a test that wrote them fails, and their paths printed", function(t)
  local dir = pv.tmp("kept-captures")
  local r = pv.run({ pv.cases .. "/net/captures.test.lua", env = "PROVIUM_CAPTURE_DIR=" .. pv.q(dir) })
  t:assert_eq(r.code, 1, r.stderr)
  t:assert_eq((pv.outcome(r.events, "captures.test.lua", "passes with its own capture")), "passed")
  t:assert_eq((pv.outcome(r.events, "captures.test.lua", "passes after")), "passed")
  local o, p = pv.outcome(r.events, "captures.test.lua", "fails with its own capture")
  t:assert_eq(o, "failed")
  t:assert_contains(p.reason, "on purpose")
  local kept = {}
  for path in p.reason:gmatch("capture kept: (%S+)") do kept[#kept + 1] = path end
  t:assert_eq(#kept, 2, p.reason) -- the test's own and the file's, not the passing test's
  for _, path in ipairs(kept) do
    t:assert_eq(path:sub(1, #dir + 1), dir .. "/", path)
    t:assert_contains(path, "captures-")
    -- a pcap file: the magic of libpcap's microsecond format, little-endian
    t:assert_eq(pv.slurp(path):sub(1, 4), "\xd4\xc3\xb2\xa1", path)
  end
  t:assert_contains(r.stdout .. r.stderr, "capture kept: " .. dir)
  t:assert_eq(pv.check_guarantees(r.events), nil)
end)
