-- A VM whose QEMU is killed under it (kill -9 from outside): the op that
-- notices fails, and every later way of ending the VM (vm:shutdown twice, the
-- end of the file) must neither emit a second vm_shutdown nor give its pool
-- share back again. Run by tests/suite/vm_state.test.lua.
provium:claim{ memory = "228M", cpus = 1 }

-- QEMU's pid: the process whose command line names the VM's scratch directory
local function qemu_pid(v)
  local dir = v:console().path:match("^(.*)/[^/]+$")
  -- only qemu-* processes: this shell's own command line names the dir too
  local p = io.popen("for d in /proc/[0-9]*; do grep -qs '^qemu' $d/comm && grep -qaF -- '" .. dir ..
    "/' $d/cmdline 2>/dev/null && echo ${d#/proc/}; done")
  local out = p:read("a")
  p:close()
  return assert(tonumber(out:match("%d+")), "no QEMU process found for " .. dir)
end

test("shutdown of a VM whose QEMU was killed", function(t)
  local v = provium:vm("victim", "linux", { memory = "128M" })
  v:boot()
  local pid = qemu_pid(v)
  os.execute("kill -9 " .. pid)
  local e = t:assert_raises(function() v:run("true") end)
  t:assert_contains(e, "VM 'victim' died during run")
  t:assert_eq(v.state, "dead")
  v:shutdown()
  v:shutdown()
end)

test("a killed VM nobody touches again ends with the file", function(t)
  local v = provium:vm("quiet", "linux", { memory = "128M" })
  v:boot()
  os.execute("kill -9 " .. qemu_pid(v))
  t:assert_raises(function() v:read_file("/etc/passwd") end)
end)
