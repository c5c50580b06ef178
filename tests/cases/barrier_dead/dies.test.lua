-- With after.test.lua: this file's runner is killed (its file timeout) while
-- it waits at a barrier of 2; after.test.lua arrives once it is dead and must
-- not count it. tests/suite/barrier.test.lua
provium.timeout = "1s"
local dir = assert(os.getenv("PROVIUM_BARRIER_MARKS"))

test("dies waiting", function(t)
  local pid = assert(io.open("/proc/self/stat")):read("l"):match("^(%d+)")
  local f = assert(io.open(dir .. "/dies.pid.tmp", "w"))
  f:write(pid)
  f:close()
  os.rename(dir .. "/dies.pid.tmp", dir .. "/dies.pid")
  provium:barrier("orphaned", 2, "60s")
end)
