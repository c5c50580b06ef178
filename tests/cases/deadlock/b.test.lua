-- Both files hold one VM, then each asks for a second one that only the other's memory could make room for.
local dir = os.getenv("SYNC_DIR")
local v = provium:vm("first", "linux", { memory = "128M" })
v:boot()
io.open(dir .. "/b", "w"):close()
test("second VM", function(t)
  wait_until(function() return io.open(dir .. "/a") end, { timeout = "120s", interval = "100ms" })
  local w = provium:vm("second", "linux", { memory = "128M" })
  local ok, err = pcall(w.boot, w)
  if not ok then t:skip(err) end
end)
