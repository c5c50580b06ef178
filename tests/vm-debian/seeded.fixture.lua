-- A Debian VM (init = "agent") with a daemon's state written to its overlay:
-- built once, cached with the image's id in its key, resumed by
-- fixture.test.lua.
local v = provium:vm("seed", "deb")
v:boot()
v:run("mkdir -p /var/lib/app && echo seeded > /var/lib/app/state"):assert_ok()
return v:snapshot()
