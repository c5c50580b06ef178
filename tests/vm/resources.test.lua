-- Guest resources have lifetimes (docs/lua-api.md, "Scopes and closing"):
-- to-be-closed VMs and processes, processes closed with their test or
-- collected by the GC, and no host fd left behind by an op that raises.
provium:claim{ memory = "512M", cpus = 2 }

local vm = provium:vm("res", "linux", { memory = "192M" })
vm:boot()

-- the runner's open fds: the shell io.popen starts is the runner's child
-- (collected first, so that files of earlier tests waiting for the GC do not count)
local function runner_fds()
  collectgarbage()
  collectgarbage()
  local p = io.popen("ls /proc/$PPID/fd | wc -l")
  local n = tonumber(p:read("a"))
  p:close()
  return n
end

-- true once no process with this pid is left in the guest
local function gone(pid)
  return vm:run("for i in $(seq 200); do kill -0 " .. pid .. " 2>/dev/null || exit 0; sleep 0.05; done; exit 1"):ok()
end

test("console:expect with a bad pattern leaks no fd", function(t)
  local c = vm:console()
  local before = runner_fds()
  for _ = 1, 20 do
    local e = t:assert_raises(function() c:expect("[", "1s") end)
    t:assert_contains(tostring(e), "malformed pattern")
  end
  -- a leak is one fd or more per raise; the margin absorbs an unrelated fd of
  -- the runner opening or closing meanwhile
  local after = runner_fds()
  t:assert(after <= before + 2, "the runner had " .. before .. " fds before 20 raising expects, " .. after .. " after")
end)

test("a to-be-closed VM shuts down at the end of its block", function(t)
  local kept
  do
    local v <close> = provium:vm("block", "linux", { memory = "128M" })
    v:boot()
    t:assert_eq(v:run("echo up").stdout, "up\n")
    kept = v
  end
  t:assert_eq(kept.state, "shut down")
  -- the name is free again once it is closed
  local again <close> = provium:vm("block", "linux", { memory = "128M" })
  t:assert_eq(again.state, "created")
end)

test("a to-be-closed process is killed at the end of its block", function(t)
  local pid
  do
    local p <close> = vm:run_async("sleep 300")
    pid = p:pid()
  end
  t:assert(gone(pid), "process " .. pid .. " still runs after its block")
end)

test("a process the GC collects is killed", function(t)
  local pid
  do
    pid = vm:run_async("sleep 300"):pid()
  end
  collectgarbage()
  collectgarbage()
  t:assert(gone(pid), "process " .. pid .. " still runs after it was collected")
end)

local leftover = {}
test("a process started in a test is closed when the test ends", function(t)
  leftover.p = vm:run_async("sleep 300")
  leftover.pid = leftover.p:pid()
end)

test("... so the next test finds it closed", function(t)
  t:assert(gone(leftover.pid), "process " .. leftover.pid .. " outlived its test")
  local e = t:assert_raises(function() leftover.p:wait("1s") end)
  t:assert_contains(tostring(e), "was closed")
end)

test("a process waited for is closed quietly", function(t)
  local p <close> = vm:run_async("echo hi")
  t:assert_eq(p:wait("10s").stdout, "hi\n")
end)
