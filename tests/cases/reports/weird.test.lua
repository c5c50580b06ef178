-- Text that XML 1.0 cannot carry as is: tests/suite/reports.test.lua checks
-- that --junit and --json-summary still write well-formed, valid reports.
print("file scope \1 says hi")

test("markup ]]> <b> & \"q\" 'a'", function(t)
  t:log("log with ]]> and \27[31mcolour\27[0m and \0 nul")
  t:fail("broken ]]> \1\2 \255 end")
end)

test("a log of two lines", function(t)
  t:log("line one\nline two")
  t:log("bad utf-8 \255 byte")
end)

test("skipped with <markup>", function(t) t:skip("reason & <why>") end)
