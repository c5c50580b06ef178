-- Networking: three VMs on one bridge, a fourth routing between two
-- bridges. provium is the switch (src/net/switch.c); these tests check what
-- the guests see.
local a = provium:vm("a", "linux", { memory = "128M" })
local b = provium:vm("b", "linux", { memory = "128M" })
local c = provium:vm("c", "linux", { memory = "128M" })
local lan = provium:bridge("lan", { seed = 7 })
lan:attach({ a, b, c })
provium:boot()

local function assert_find(t, s, pat)
  t:assert(s:find(pat), ("%q does not match %q"):format(s, pat))
end

local function raises_with(t, fn, text)
  t:assert_contains(tostring(t:assert_raises(fn)), text)
end

-- each test starts from a healed bridge without impairments, even if the
-- one before it failed half-way
local function fresh()
  lan:restore_all()
  lan:reset()
end

-- reachability must not depend on how loaded the host is: a few tries with
-- a generous wait (a cut drops every frame, so the negative checks below
-- need no such care)
local function reaches(from, to)
  for _ = 1, 3 do
    if from:run("ping -c 1 -W 3 " .. to):ok() then return true end
  end
  return false
end

local function ping(from, to, opts)
  opts = opts or {}
  return from:run(("ping -c %d -W %d %s %s"):format(opts.count or 1, opts.wait or 1,
    opts.interval and ("-i " .. opts.interval) or "", to))
end

test("addresses are assigned and names resolve in every guest", function(t)
  t:assert_eq(a:ip("lan"), "10.77.1.11")
  t:assert_eq(b:ip(), "10.77.1.12")
  t:assert_eq(c:mac(lan), "52:54:00:77:01:03")
  assert_find(t, a:run("ip -4 addr show eth0"):assert_ok().stdout, "10.77.1.11/24")
  assert_find(t, b:run("cat /sys/class/net/eth0/address"):assert_ok().stdout, b:mac())
  t:assert_eq(c:run("hostname"):assert_ok().stdout, "c\n")
  t:assert(reaches(a, "b"), "a pings b by name")
  t:assert(reaches(b, "c.lan"), "b pings c.lan")
  t:assert(reaches(c, a:ip()), "c pings a's address")
  t:assert_eq(#lan:members(), 3)
  t:assert_eq(a:nic("lan"):name(), "eth0")
end)

test("IPv6 link-local addresses work between guests", function(t)
  fresh()
  -- the guest kernel makes them; usable once duplicate address detection
  -- is done (no longer "tentative")
  local function link_local(vm)
    return wait_until(function()
      local out = vm:run("ip -6 addr show dev eth0 scope link"):assert_ok().stdout
      return not out:find("tentative") and out:match("inet6 (fe80:[%x:]+)/64")
    end, { timeout = "30s", desc = vm.name .. "'s link-local address" })
  end
  link_local(a)
  local addr = link_local(b)
  local ok = false
  for _ = 1, 3 do
    ok = ok or a:run(("ping6 -c 1 -W 3 -I eth0 %s || ping -6 -c 1 -W 3 -I eth0 %s"):format(addr, addr)):ok()
  end
  t:assert(ok, "a pings b's " .. addr .. " on eth0")
end)

test("TCP between two VMs with busybox nc", function(t)
  fresh()
  local srv = b:run_async("nc -l -p 7000 > /tmp/got")
  wait_until(function() return b:run("netstat -ltn | grep -q ':7000 '"):ok() end, { timeout = "20s" })
  a:run("echo hello over tcp | nc b 7000"):assert_ok()
  srv:wait()
  t:assert_eq(b:read_file("/tmp/got"), "hello over tcp\n")
end)

test("a symmetric partition cuts both ways and heals", function(t)
  fresh()
  lan:partition(a, c)
  t:assert(lan:is_partitioned(a, c))
  t:assert(lan:is_partitioned(c, a))
  t:assert(not ping(a, "c"):ok(), "a cannot reach c")
  t:assert(not ping(c, "a"):ok(), "c cannot reach a")
  t:assert(reaches(a, "b"), "a still reaches b")
  lan:unpartition(a, c)
  t:assert(not lan:is_partitioned(a, c))
  t:assert(reaches(a, "c"), "healed")
end)

-- echo requests a guest's kernel answered (it saw them arrive)
local function in_echos(vm)
  local snmp = vm:read_file("/proc/net/snmp")
  local names, values = snmp:match("Icmp: (%a[^\n]*)\nIcmp: ([^\n]*)")
  local i = 0
  for name in names:gmatch("%S+") do
    i = i + 1
    if name == "InEchos" then
      local j = 0
      for v in values:gmatch("%S+") do
        j = j + 1
        if j == i then return tonumber(v) end
      end
    end
  end
end

test("a one-way partition is one-way for IP traffic", function(t)
  fresh()
  lan:partition({ from = a, to = b })
  t:assert(lan:is_partitioned({ from = a, to = b }))
  t:assert(not lan:is_partitioned({ from = b, to = a }))
  -- b's echo requests reach a (its replies are what the cut drops) ...
  local a0, b0 = in_echos(a), in_echos(b)
  t:assert(not ping(b, "a"):ok(), "no reply crosses the cut")
  t:assert(in_echos(a) > a0, "a received b's echo request")
  -- ... and a's never reach b
  t:assert(not ping(a, "b"):ok())
  t:assert_eq(in_echos(b), b0, "b saw nothing of a's")
  lan:restore_all()
  t:assert(reaches(a, "b"))
end)

test("isolate cuts a VM off and unisolate brings back earlier cuts", function(t)
  fresh()
  lan:partition(b, c)
  lan:isolate(a)
  t:assert(lan:is_isolated(a))
  t:assert(not ping(b, "a"):ok())
  t:assert(not ping(a, "c"):ok())
  lan:unisolate(a)
  t:assert(not lan:is_isolated(a))
  t:assert(reaches(b, "a"))
  t:assert(not ping(b, "c"):ok(), "the partition of b and c is still there")
  lan:restore_all()
  t:assert(reaches(b, "c"))
end)

test("latency on the bridge delays each direction", function(t)
  fresh()
  lan:add_latency(100)
  t:assert_eq(lan:latency_ms(), 100)
  local out = ping(a, "b", { count = 3, wait = 3, interval = "0.2" }):assert_ok().stdout
  local min = tonumber(out:match("min/avg/max = ([%d.]+)"))
  t:assert(min and min >= 195, "round trip " .. tostring(min) .. " ms is at least 2 x 100 ms")
  lan:reset()
  t:assert_eq(lan:latency_ms(), 0)
end)

test("drop_rate on one direction loses that share of frames, the same ones each run", function(t)
  fresh()
  lan:drop_rate({ from = a, to = c, pct = 100 })
  t:assert(not ping(a, "c"):ok())
  t:assert_eq(lan:drop_rate_pct({ from = a, to = c }), 100)
  lan:reset()
  local before = a:nic("lan"):counters()
  t:assert(reaches(a, "c"))
  local after = a:nic("lan"):counters()
  t:assert(after.tx_packets > before.tx_packets, "a's NIC counted what it sent")
  t:assert(after.rx_packets > before.rx_packets, "and what it got")
end)

test("a NIC disconnected is link down in the guest", function(t)
  fresh()
  local nic = b:nic("lan")
  -- carrier follows at once; operstate after the kernel's linkwatch (~1 s)
  local function link(want)
    wait_until(function()
      return b:run("cat /sys/class/net/eth0/carrier /sys/class/net/eth0/operstate"):assert_ok().stdout == want
    end, { timeout = "10s", desc = "eth0 carrier/operstate " .. want:gsub("\n", " ") })
  end
  nic:disconnect()
  link("0\ndown\n")
  t:assert(not ping(a, "b"):ok())
  nic:reconnect()
  link("1\nup\n")
  wait_until(function() return reaches(a, "b") end, { timeout = "30s" })
end)

test("a bridge capture is a pcap file with the frames that crossed", function(t)
  fresh()
  local cap = lan:capture()
  t:assert(ping(a, "b", { count = 2, wait = 5, interval = "0.2" }):ok())
  local path = cap:path()
  local frames = cap:stop()
  t:assert(frames >= 4, "two echo requests and two replies, got " .. frames)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  t:assert_eq(data:sub(1, 4), "\xd4\xc3\xb2\xa1", "pcap magic (little endian, microseconds)")
  local p = io.popen("tcpdump -nr " .. path .. " icmp 2>/dev/null")
  local text = p:read("a")
  p:close()
  assert_find(t, text, "10%.77%.1%.11 > 10%.77%.1%.12: ICMP echo request")
  assert_find(t, text, "10%.77%.1%.12 > 10%.77%.1%.11: ICMP echo reply")
end)

test("bad input is refused with a clear error", function(t)
  fresh()
  raises_with(t, function() lan:attach(a) end, "attach VMs to bridges before they boot")
  raises_with(t, function() lan:drop_rate(120) end, "percentage")
  raises_with(t, function() lan:add_latency(-5) end, "must not be negative")
  raises_with(t, function() provium:bridge("lan", {}) end, "already exists")
  raises_with(t, function() provium:bridge("nosuch") end, "no bridge named 'nosuch'")
  raises_with(t, function() lan:partition(a, "ghost") end, "not attached")
  raises_with(t, function() a:ip("wan") end, "not on bridge 'wan'")
end)

test("a lab snapshot keeps the network: restored with its partition, guests keep their addresses", function(t)
  fresh()
  lan:partition(a, c)
  lan:add_latency({ from = b, to = a, ms = 30 })
  local snap = provium:snapshot()
  lan:restore_all()
  lan:reset()
  t:assert(reaches(a, "c"))
  provium:restore(snap)
  t:assert(lan:is_partitioned(a, c), "the partition is back")
  t:assert_eq(lan:latency_ms({ from = b, to = a }), 30)
  t:assert(not ping(a, "c"):ok())
  t:assert(reaches(a, "b"), "a resumed guest reaches the others at its address")
  t:assert_eq(a:ip(), "10.77.1.11")
  snap:delete()
  fresh()
end)

test("a VM on two bridges routes between them", { timeout = "240s" }, function(t)
  local r = provium:vm("r", "linux", { memory = "128M" })
  local x = provium:vm("x", "linux", { memory = "128M" })
  local y = provium:vm("y", "linux", { memory = "128M" })
  local left = provium:bridge("left", {})
  local right = provium:bridge("right", {})
  left:attach({ r, x })
  right:attach({ r, y })
  provium:boot({ timeout = "200s" })
  t:assert_eq(r:nic("left"):name(), "eth0")
  t:assert_eq(r:nic("right"):name(), "eth1")
  r:run("sysctl -w net.ipv4.ip_forward=1"):assert_ok()
  x:run("ip route add " .. y:ip():gsub("%.%d+$", ".0") .. "/24 via " .. r:ip("left")):assert_ok()
  y:run("ip route add " .. x:ip():gsub("%.%d+$", ".0") .. "/24 via " .. r:ip("right")):assert_ok()
  -- x and y are on no common bridge: neighbour resolution for the router's
  -- address is already in place (permanent entries)
  t:assert(reaches(x, y:ip()), "x reaches y through r")
  -- detaching a running VM unplugs its NIC
  local x_ip = x:ip("left")
  left:detach(x)
  t:assert_eq(#left:members(), 1)
  wait_until(function()
    return x:run("cat /sys/class/net/eth0/carrier /sys/class/net/eth0/operstate"):assert_ok().stdout == "0\ndown\n"
  end, { timeout = "10s", desc = "x's eth0 link down" })
  t:assert(not ping(r, x_ip):ok())
  raises_with(t, function() x:ip("left") end, "not on bridge 'left'")
end)
