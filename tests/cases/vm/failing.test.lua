-- A failing test in a file with a booted VM: the failure carries the console.
local v = provium:vm("box", "linux")
v:boot()
test("fails after printing to the console", { spec = "vm/console" }, function(t)
  v:run("echo last-words-before-failure > /dev/console")
  t:fail("on purpose")
end)
