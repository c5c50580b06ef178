-- lsp_gen.lua - the lua-language-server annotations of the test API, from
-- src/runner/api_annotations.lua (its header says what an entry holds).
-- Run by provium lsp-setup (cmd_lsp.c) in a Lua state of its own:
--   local text, globals = gen(api, version)
-- text is the ---@meta file; globals the names it defines in _G. A malformed
-- entry (a signature that does not parse, a duplicate name, a type that names
-- no class or alias) raises, naming it: the annotations are part of the build
-- and must never come out half right.

local api, version = ...

local out = {}
local function emit(s) out[#out + 1] = s end

local function fail(where, msg) error(where .. ": " .. msg, 0) end

-- Splits s at the commas outside brackets; trims the pieces.
local function split_top(s, where)
  local parts, depth, start = {}, 0, 1
  for i = 1, #s do
    local c = s:sub(i, i)
    if c == "(" or c == "[" or c == "{" or c == "<" then depth = depth + 1
    elseif c == ")" or c == "]" or c == "}" or c == ">" then
      depth = depth - 1
      if depth < 0 then fail(where, "unbalanced brackets in " .. s) end
    elseif c == "," and depth == 0 then
      parts[#parts + 1] = s:sub(start, i - 1)
      start = i + 1
    end
  end
  if depth ~= 0 then fail(where, "unbalanced brackets in " .. s) end
  parts[#parts + 1] = s:sub(start)
  local r = {}
  for _, p in ipairs(parts) do
    p = p:match("^%s*(.-)%s*$")
    if p ~= "" then r[#r + 1] = p end
  end
  return r
end

-- "(a: T, b?: U, ...: V): R1, R2" (a leading "." marks a function called
-- with `.`) -> { dot =, params = {{name, type, opt}}, returns = {types} }
local function parse_sig(sig, where)
  local dot = sig:sub(1, 1) == "."
  if dot then sig = sig:sub(2) end
  if sig:sub(1, 1) ~= "(" then fail(where, "a signature starts with ( : " .. sig) end
  local depth, close = 0, nil
  for i = 1, #sig do
    local c = sig:sub(i, i)
    if c == "(" then depth = depth + 1
    elseif c == ")" then
      depth = depth - 1
      if depth == 0 then close = i break end
    end
  end
  if not close then fail(where, "no ) closes the parameters: " .. sig) end
  local params = {}
  for _, p in ipairs(split_top(sig:sub(2, close - 1), where)) do
    local name, opt, ty = p:match("^([%w_%.]+)(%??)%s*:%s*(.+)$")
    if not name or (name ~= "..." and not name:match("^[%a_][%w_]*$")) then
      fail(where, "a parameter is NAME: TYPE or NAME?: TYPE, got " .. p)
    end
    params[#params + 1] = { name = name, type = ty, opt = opt == "?" }
  end
  local rest = sig:sub(close + 1):match("^%s*(.-)%s*$")
  local returns = {}
  if rest ~= "" then
    local r = rest:match("^:%s*(.+)$")
    if not r then fail(where, "after the parameters comes : RETURNS, got " .. rest) end
    returns = split_top(r, where)
  end
  return { dot = dot, params = params, returns = returns }
end

-- ---- the names every type may use --------------------------------------------

local known = {}
for _, a in ipairs(api.aliases) do known[a[1]] = true end
for _, c in ipairs(api.classes) do
  if known[c.name] then fail(c.name, "defined twice") end
  known[c.name] = true
end

local function check_type(ty, where)
  for name in ty:gmatch("provium%.[%w_]+") do
    if not known[name] then fail(where, "type " .. name .. " is no class or alias") end
  end
end

local function fun_type(sig, self_type)
  local ps = {}
  if self_type then ps[1] = "self: " .. self_type end
  for _, p in ipairs(sig.params) do
    ps[#ps + 1] = p.name .. (p.opt and "?" or "") .. ": " .. p.type
  end
  local s = "fun(" .. table.concat(ps, ", ") .. ")"
  if #sig.returns > 0 then s = s .. ": " .. table.concat(sig.returns, ", ") end
  return s
end

local function doc_lines(doc)
  if not doc or doc == "" then return end
  for line in (doc .. "\n"):gmatch("(.-)\n") do emit("---" .. line) end
end

local classes_by_name = {}
for _, c in ipairs(api.classes) do classes_by_name[c.name] = c end

-- One function: its doc, ---@param/---@return/---@overload lines and a stub.
-- owner is the Lua expression the stub hangs off (nil for a global).
local function emit_function(owner, cls, m, where)
  local sig_text, doc = m[2], m[3]
  if m.from then
    local src = classes_by_name[m.from]
    if not src then fail(where, "from names no class: " .. m.from) end
    for _, sm in ipairs(src.methods or {}) do
      if sm[1] == m[1] then sig_text, doc = sm[2], sm[3] end
    end
    if not sig_text then fail(where, m.from .. " has no method " .. m[1]) end
  end
  if type(sig_text) ~= "string" then fail(where, "no signature") end
  local sig = parse_sig(sig_text, where)
  if owner == nil and not sig.dot then fail(where, "a global function's signature starts with .") end
  doc_lines(doc)
  if m.generic then emit("---@generic " .. m.generic) end
  local names = {}
  for _, p in ipairs(sig.params) do
    check_type(p.type, where)
    emit("---@param " .. p.name .. (p.opt and "?" or "") .. " " .. p.type)
    names[#names + 1] = p.name
  end
  for _, r in ipairs(sig.returns) do
    check_type(r, where)
    emit("---@return " .. r)
  end
  for _, o in ipairs(m.overloads or {}) do
    local os = parse_sig(o, where)
    for _, p in ipairs(os.params) do check_type(p.type, where) end
    for _, r in ipairs(os.returns) do check_type(r, where) end
    emit("---@overload " .. fun_type(os, (not sig.dot) and cls or nil))
  end
  if m.method_too then
    if not sig.dot then fail(where, "method_too is for a function (a signature starting with .)") end
    emit("---@overload " .. fun_type(sig, cls))
    for _, o in ipairs(m.overloads or {}) do emit("---@overload " .. fun_type(parse_sig(o, where), cls)) end
  end
  local head = owner and (owner .. (sig.dot and "." or ":") .. m[1]) or m[1]
  emit("function " .. head .. "(" .. table.concat(names, ", ") .. ") end")
  emit("")
end

-- ---- the file -------------------------------------------------------------------

emit("---@meta provium")
emit("-- Provium's Lua API for lua-language-server (provium " .. version .. "), written by")
emit("-- `provium lsp-setup` from the API's own annotations; run it again after")
emit("-- upgrading provium rather than editing this file. docs/lua-api.md has the")
emit("-- whole story of each call.")
emit("")

for _, a in ipairs(api.aliases) do
  check_type(a[2], a[1])
  doc_lines(a[3])
  emit("---@alias " .. a[1] .. " " .. a[2])
  emit("")
end

local globals = {}
local seen_global = {}
for _, g in ipairs(api.globals) do
  if seen_global[g[1]] then fail(g[1], "a global defined twice") end
  seen_global[g[1]] = true
  globals[#globals + 1] = g[1]
  emit_function(nil, nil, g, g[1])
end

local nfun = #api.globals
for _, c in ipairs(api.classes) do
  local where = c.name
  if c.parent and not classes_by_name[c.parent] then fail(where, "parent names no class: " .. c.parent) end
  if c.options and c.bind then fail(where, "an options table is bound to nothing") end
  doc_lines(c.doc)
  emit("---@class " .. c.name .. (c.parent and (": " .. c.parent) or ""))
  local seen = {}
  for _, f in ipairs(c.fields or {}) do
    if seen[f[1]] then fail(where, "field " .. f[1] .. " twice") end
    seen[f[1]] = true
    check_type(f[2], where .. "." .. f[1])
    local opt = c.options and f[1]:sub(1, 1) ~= "[" and "?" or ""
    local d = f[3] and f[3] ~= "" and (" " .. f[3]:gsub("\n", " ")) or ""
    emit("---@field " .. f[1] .. opt .. " " .. f[2] .. d)
  end
  if c.open then emit("---@field [string] any") end
  if c.methods and #c.methods > 0 then
    local owner = c.global or c.name:match("([%w_]+)$")
    emit(c.global and (c.global .. " = {}") or ("local " .. owner .. " = {}"))
    emit("")
    for _, m in ipairs(c.methods) do
      if seen[m[1]] then fail(where, m[1] .. " twice") end
      seen[m[1]] = true
      emit_function(owner, c.name, m, where .. ":" .. m[1])
      nfun = nfun + 1
    end
  else
    if c.global then emit(c.global .. " = {}") end
    emit("")
  end
  if c.global then
    if seen_global[c.global] then fail(where, "global " .. c.global .. " defined twice") end
    seen_global[c.global] = true
    globals[#globals + 1] = c.global
  end
end

return table.concat(out, "\n"), globals, #api.classes, nfun
