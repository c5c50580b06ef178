-- Stays mid-run until provium is signalled. tests/suite/signals.test.lua reads
-- "ready" from the FIFO named by PV_SIGNAL_FIFO (opening it for writing blocks
-- until the suite reads), then signals provium: no sleeps, no polling.
test("before", function(t) end)

test("blocks", { timeout = "250s" }, function(t)
  local f = assert(io.open(assert(os.getenv("PV_SIGNAL_FIFO"), "PV_SIGNAL_FIFO is not set"), "w"))
  f:write("ready\n")
  f:close()
  pcall(wait_until, function() return false end, { timeout = "240s", interval = "1s" })
end)

test("after", function(t) end)
