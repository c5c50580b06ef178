-- A fixture: built once (boot + setup), cached compressed, and resumed by
-- every file that asks for it in a fraction of a boot. Editing this file (or
-- a helper it requires) rebuilds it on the next run.
local box = provium:vm("box", "linux", { memory = "256M" })
box:boot()
box:mkdir("/srv/data", { parents = true })
box:write_file("/srv/data/greeting", "hello from the fixture\n")
-- a daemon started here is still running in every resumed copy; wait for
-- its first beat, so that every copy starts with /tmp/heartbeat in place
box:run("(while true; do date +%s > /tmp/heartbeat; sleep 1; done) </dev/null >/dev/null 2>&1 &" ..
  " until [ -s /tmp/heartbeat ]; do sleep 1; done"):assert_ok()
return box:snapshot()
