-- Host access: vm:forward (a loopback port on the host that reaches a guest
-- port) and bridge:enable_uplink (NAT to the host's network). Both go
-- through libslirp on a port of the bridge's switch (src/net/uplink.c), so
-- the bridge's cuts and impairments apply to them too.
local a = provium:vm("a", "linux", { memory = "128M" })
local b = provium:vm("b", "linux", { memory = "128M" })
local lan = provium:bridge("lan", {})
local wan = provium:bridge("wan", {})
lan:attach({ a, b })
wan:attach(b, { ip = "10.77.2.50/24" }) -- b's eth1, at an address of the test's choosing
wan:enable_uplink()  -- before boot: b gets its default route at boot
provium:boot()

-- runs a host shell command, returns its stdout
local function host(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

-- what a host client reads from addr ("127.0.0.1:PORT"): the first line,
-- within a few seconds (bash's /dev/tcp: no tool beyond the host's shell)
local function host_read_line(addr)
  local h, p = addr:match("^(.+):(%d+)$")
  return host(("timeout 10 bash -c 'exec 3<>/dev/tcp/%s/%s && head -n 1 <&3' 2>/dev/null"):format(h, p))
end

local function listening(vm, port)
  wait_until(function() return vm:run("netstat -ltn | grep -q ':" .. port .. " '"):ok() end,
    { timeout = "20s", desc = "a listener on port " .. port })
end

-- a server on the host's loopback that answers a line with a greeting; returns its
-- port and a function that stops it
local function host_server()
  local py = "import socket,sys\n" ..
    "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(8)\n" ..
    "print(s.getsockname()[1], flush=True); s.settimeout(300)\n" ..
    "while True:\n  c,_=s.accept(); c.settimeout(30); c.makefile('rb').readline()\n" ..
    "  c.sendall(b'hello-from-host\\n'); c.close()\n"
  local script, out = os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(py)
  f:close()
  local pid = host(("/usr/bin/python3 %s > %s 2>&1 & echo $!"):format(script, out)):match("%d+")
  local port = wait_until(function()
    local f = io.open(out)
    local s = f and f:read("l")
    if f then f:close() end
    return s and s:match("^%d+$")
  end, { timeout = "20s", desc = "the host server's port" })
  return port, function() os.execute("kill " .. pid); os.remove(out); os.remove(script) end
end

test("vm:forward gives a loopback port on the host that reaches the guest's port", function(t)
  local srv = a:run_async("echo hello-from-a | nc -l -p 8080")
  listening(a, 8080)
  local addr = a:forward(8080)
  t:assert(addr:match("^127%.0%.0%.1:%d+$"), "a loopback address: " .. addr)
  t:assert_eq(a:forward(8080), addr, "the same guest port, the same forward")
  t:assert_eq(host_read_line(addr), "hello-from-a\n")
  srv:wait()
  local port = addr:match(":(%d+)$")
  -- loopback only: the kernel's socket tables list one listener on that
  -- port, on 127.0.0.1 (0100007F), none on another address or on IPv6
  local listeners = {}
  for _, tab in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    for line in io.lines(tab) do
      local addr, p, st = line:match("^%s*%d+: (%x+):(%x+) %x+:%x+ (%x%x)")
      if p and tonumber(p, 16) == tonumber(port) and st == "0A" then listeners[#listeners + 1] = addr end
    end
  end
  t:assert_eq(table.concat(listeners, " "), "0100007F")
end)

test("an address given at attach is the guest's", function(t)
  t:assert_eq(b:ip("wan"), "10.77.2.50")
  t:assert_contains(b:run("ip -4 addr show dev eth1"):assert_ok().stdout, "inet 10.77.2.50/24")
end)

test("a forward goes through the switch: isolating the VM cuts it", function(t)
  local srv = a:run_async("echo second | nc -l -p 8081")
  listening(a, 8081)
  local addr = a:forward(8081, "lan")
  lan:isolate(a)
  t:assert_eq(host_read_line(addr), "", "nothing reaches an isolated VM")
  lan:unisolate(a)
  t:assert_eq(host_read_line(addr), "second\n")
  srv:wait()
end)

test("the uplink: a guest reaches the host through the gateway, only when enabled", function(t)
  local port, stop = host_server()
  local ok, err = pcall(function()
    -- b's wan has the uplink since boot: its default route and DNS relay
    t:assert_contains(b:run("ip route"):assert_ok().stdout, "default via 10.77.2.2 dev eth1")
    t:assert_contains(b:run("cat /etc/resolv.conf"):assert_ok().stdout, "nameserver 10.77.2.3")
    t:assert_eq(b:run("echo hi | nc -w 10 10.77.2.2 " .. port):assert_ok().stdout, "hello-from-host\n")
    -- lan is restricted: a forward exists on it, but a guest gets nowhere
    local fwd = a:forward(8082)
    t:assert(not a:run("ip route"):assert_ok().stdout:find("default"), "a has no default route")
    t:assert_eq(a:run("echo hi | nc -w 3 10.77.1.2 " .. port).stdout, "", "restricted: nothing from the host")
    t:assert(not lan:uplink_enabled())
    -- enabled at run time: a running guest gets its route now; the forward stays
    lan:enable_uplink()
    t:assert(lan:uplink_enabled())
    t:assert_contains(a:run("ip route"):assert_ok().stdout, "default via 10.77.1.2 dev eth0")
    t:assert_eq(a:run("echo hi | nc -w 10 10.77.1.2 " .. port):assert_ok().stdout, "hello-from-host\n")
    local srv = a:run_async("echo still-here | nc -l -p 8082")
    listening(a, 8082)
    t:assert_eq(a:forward(8082), fwd)
    t:assert_eq(host_read_line(fwd), "still-here\n")
    srv:wait()
  end)
  stop()
  if not ok then error(err, 0) end
end)

test("forward: bad input is a clear error", function(t)
  local function raises_with(fn, text)
    t:assert_contains(tostring(t:assert_raises(fn)), text)
  end
  raises_with(function() a:forward(0) end, "the guest port must be 1-65535")
  raises_with(function() a:forward(70000) end, "the guest port must be 1-65535")
  raises_with(function() b:forward(80) end, "VM 'b' is on several bridges; name one: vm:forward(..., \"bridge\")")
  raises_with(function() a:forward(80, "wan") end, "VM 'a' is not on bridge 'wan'")
end)
