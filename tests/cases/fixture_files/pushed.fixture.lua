-- A fixture whose state comes from host files: editing either rebuilds it.
local v = provium:vm("p", "linux")
v:boot()
v:push_file("data/payload.txt", "/root/payload", { mode = "0600" })
v:write_file("/root/dep", io.open(provium:depends_on_file("data/dep.txt")):read("a"))
return v:snapshot()
