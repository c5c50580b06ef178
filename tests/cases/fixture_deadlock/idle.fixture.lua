local v = provium:vm("idle", "linux", { memory = "128M" })
v:boot()
return v:snapshot()
