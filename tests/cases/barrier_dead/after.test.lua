-- See dies.test.lua: arrives at the barrier it left when that runner is gone.
local dir = assert(os.getenv("PROVIUM_BARRIER_MARKS"))

local function slurp(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function gone(pid)
  local stat = slurp("/proc/" .. pid .. "/stat")
  return not stat or stat:match("%) ([ZX])") ~= nil
end

test("a dead caller's arrival does not count", function(t)
  local pid = wait_until(function() return slurp(dir .. "/dies.pid") end, { timeout = "60s", desc = "dies.test.lua's pid" })
  wait_until(function() return gone(pid) end, { timeout = "60s", desc = "dies.test.lua's runner to die" })
  -- it died inside the barrier; alone, this caller does not fill it
  t:assert_eq(provium:barrier("orphaned", 2, 0.3), false)
end)
