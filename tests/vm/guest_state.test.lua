-- What a guest and its QEMU get from the host: only their own fds, a guest
-- clock and random state that are fresh after every restore, and an agent
-- that keeps answering (and enforcing timeouts) under a fork bomb.
provium:claim{ memory = "456M", cpus = 2 }
local v = provium:vm("g", "linux", { memory = "128M" })
v:boot()

-- QEMU's pid: the process whose command line names the VM's scratch directory
local function qemu_pid(vm)
  local dir = vm:console().path:match("^(.*)/[^/]+$")
  local p = io.popen("for d in /proc/[0-9]*; do grep -qaF -- '" .. dir .. "/' $d/cmdline 2>/dev/null && echo ${d#/proc/}; done")
  local out = p:read("a")
  p:close()
  return assert(tonumber(out:match("%d+")), "no QEMU process found for " .. dir)
end

-- fd number -> readlink target, of a process
local function fds(pid)
  local p = io.popen("cd /proc/" .. pid .. "/fd && for f in *; do echo \"$f $(readlink $f)\"; done")
  local r = {}
  for line in p:lines() do
    local n, target = line:match("^(%d+) (.*)$")
    if n then r[tonumber(n)] = target end
  end
  p:close()
  return r
end

local function my_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = tonumber(f:read("a"):match("^%d+"))
  f:close()
  return pid
end

test("QEMU inherits none of the runner's fds", function(t)
  -- a file the test holds open (Lua's io.open has no O_CLOEXEC) while a VM boots
  local path = os.tmpname()
  local held = assert(io.open(path, "w"))
  local w = provium:vm("fdcheck", "linux", { memory = "128M" })
  w:boot()
  local mine = {}
  for n, target in pairs(fds(my_pid())) do
    if n > 2 then mine[target] = n end
  end
  for _, vm in ipairs({ v, w }) do
    for n, target in pairs(fds(qemu_pid(vm))) do
      t:assert(target ~= path, "QEMU of " .. vm.name .. " holds the test's file " .. path .. " as fd " .. n)
      t:assert(n <= 2 or not mine[target],
        "QEMU of " .. vm.name .. " fd " .. n .. " is the runner's fd " .. tostring(mine[target]) .. " (" .. target .. ")")
    end
  end
  held:close()
  os.remove(path)
  w:shutdown()
end)
