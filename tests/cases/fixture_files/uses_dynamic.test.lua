test("a fixture naming a host file by a variable fails to build", function(t)
  provium.vm_fixture("dynamic")
end)
