-- Helpers for the VM tests that look at a VM's QEMU from the host.
local M = {}

-- QEMU's pid: the process whose command line names the VM's scratch directory
function M.pid(vm)
  local dir = vm:console().path:match("^(.*)/[^/]+$")
  -- only qemu-* processes: this shell's own command line names the dir too
  local p = io.popen("for d in /proc/[0-9]*; do grep -qs '^qemu' $d/comm && grep -qaF -- '" .. dir ..
    "/' $d/cmdline 2>/dev/null && echo ${d#/proc/}; done")
  local out = p:read("a")
  p:close()
  return assert(tonumber(out:match("%d+")), "no QEMU process found for " .. dir)
end

return M
