-- A builder whose runner dies mid-build: fixture_build_started came from
-- it, fixture_build_done never can.
os.execute("kill -KILL $PPID")
-- the signal lands asynchronously: wait for it
pcall(wait_until, function() return false end, { timeout = "60s", interval = "100ms" })
error("still alive after kill -KILL")
