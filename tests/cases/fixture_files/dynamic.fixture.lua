-- A host file named by a variable: the cache key cannot see it.
local name = "data/dep.txt"
provium:depends_on_file(name)
return nil
