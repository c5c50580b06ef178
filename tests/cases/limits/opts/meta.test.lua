-- meta keys are free metadata, but one a letter away from a key the runner reads is a typo
test("typo in meta", { timout = "1s" }, function(t) end)
