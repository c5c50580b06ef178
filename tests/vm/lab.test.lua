-- Labs on a small host with the default pool: vCPUs are threads and are
-- shared (4 per pool cpu), memory is not. No claim on purpose: a 3-node
-- cluster written the obvious way must boot on a 2-core machine.
local a = provium:vm("a", "linux", { memory = "128M" })
local b = provium:vm("b", "linux", { memory = "128M" })
provium:boot()

test("a third VM boots inside a test, next to two at file scope", function(t)
  local c = provium:vm("c", "linux", { memory = "128M" })
  c:boot()
  t:assert_eq(c:run("echo up"):assert_ok().stdout, "up\n")
  t:assert_eq(a:run("echo a"):assert_ok().stdout, "a\n")
end)

test("a lab of eight 1-vCPU VMs", { timeout = "240s" }, function(t)
  local nodes = { a, b }
  for i = 3, 8 do
    nodes[i] = provium:vm("n" .. i, "linux", { memory = "128M" })
  end
  provium:boot({ timeout = "200s" })
  for i, v in ipairs(nodes) do
    v:write_file("/tmp/id", tostring(i))
  end
  for i, v in ipairs(nodes) do
    t:assert_eq(v:read_file("/tmp/id"), tostring(i))
  end
end)
