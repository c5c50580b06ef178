-- provium repl --fixture seeded: a VM with a file written when it was built.
local v = provium:vm("seeded", "linux")
v:boot()
v:write_file("/root/seed", "grown")
return v:snapshot()
