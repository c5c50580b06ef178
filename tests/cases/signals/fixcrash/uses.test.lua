local v = provium.vm_fixture("dies")
test("never gets the fixture", function(t) end)
