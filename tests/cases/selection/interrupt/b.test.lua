-- Says "ready" on the FIFO named by PV_SIGNAL_FIFO, then waits to be
-- interrupted (as tests/cases/signals/block does).
test("before", function(t) end)

test("blocks", { timeout = "250s" }, function(t)
  local f = assert(io.open(assert(os.getenv("PV_SIGNAL_FIFO"), "PV_SIGNAL_FIFO is not set"), "w"))
  f:write("ready\n")
  f:close()
  pcall(wait_until, function() return false end, { timeout = "240s", interval = "1s" })
end)

test("after", function(t) end)
