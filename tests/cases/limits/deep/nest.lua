-- nest(n): a table with n tables nested inside it ({d = {d = ... {}}}).
return function(n, leaf)
  local t = leaf or {}
  for _ = 1, n do t = { d = t } end
  return t
end
