-- Tests with meta values for --tag-meta, --no-tag-meta, --coverage --by and
-- provium list --tests (tests/suite/selection.test.lua).
test("net lease", { owner = "net", level = 2, ratio = 2.0, tags = { "net", "fast" }, spec = "net/dhcp" }, function(t) end)
test("disk write", { owner = "disk", level = 3, spec = "disk/io" }, function(t) end)
test("untouched", function(t) end)
test("net fails", { owner = "net", spec = "net/dhcp" }, function(t)
  t:fail("on purpose")
end)
