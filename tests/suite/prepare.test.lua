-- Profiles that build themselves (docs/config.md, "Profiles that build
-- themselves") and provium prepare (docs/cli.md): a profile whose build
-- copies the built-in guest's kernel and initrd into {out}, counting its
-- runs in a file, run again and again as its inputs and command change.
local pv = require("lib.pv")

local dir = pv.tmp("prepare")
os.execute("mkdir -p " .. pv.q(dir .. "/src") .. " " .. pv.q(dir .. "/tests"))

local function put(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- the built-in image's directory, from provium image list
local builtin
do
  local r = pv.run({ "image", "list", no_save = true })
  builtin = r.stdout:match("linux, host%s+built%-in%s+(%S+)")
end

local counter = dir .. "/builds"
local function count()
  local n = 0
  for _ in pv.slurp(counter):gmatch("\n") do n = n + 1 end
  return n
end

-- provium.lua with profile mine = { build = cmd, ... } plus extra profile text
local function config(cmd, extra)
  local path = dir .. "/provium.lua"
  put(path, string.format([[return { profiles = {
  mine = {
    build = %q,
    build_out = %q,
    build_inputs = { %q },
    kernel = "{out}/vmlinuz",
    initrd = "{out}/initrd",
  },
  %s
} }
]], cmd, dir .. "/out", dir .. "/src", extra or ""))
  return path
end

local copy = "cp " .. pv.q(tostring(builtin) .. "/vmlinuz") .. " " .. pv.q(tostring(builtin) .. "/initrd")
  .. " {out}/ && echo built >> " .. pv.q(counter)
put(dir .. "/src/kernel.c", "v1\n")

local function prepare(args)
  local a = { "prepare", no_save = true }
  for _, x in ipairs(args or {}) do a[#a + 1] = x end
  return pv.run(a)
end

test("provium prepare builds once, then the stamp says up to date", function(t)
  t:assert(builtin, "provium image list names the built-in image")
  local cfg = config(copy)
  local r = prepare({ "--config", cfg })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(r.stdout, "mine: prepared\n")
  t:assert_contains(r.stderr, "provium: profile mine: building: cp ")
  t:assert_contains(r.stderr, dir .. "/out/") -- {out} expanded in the command
  t:assert(r.stderr:match("provium: profile mine: built in %d+%.%ds\n"), r.stderr)
  t:assert_eq(count(), 1)
  r = prepare({ "--config", cfg, "mine" })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(r.stdout, "mine: up to date\n")
  t:assert_eq(r.stderr, "")
  t:assert_eq(count(), 1)
end)

test("an input that changes, a new command, --force, or a missing output rebuilds", function(t)
  local cfg = config(copy)
  t:assert_eq(prepare({ "--config", cfg }).code, 0)
  local before = count()
  put(dir .. "/src/kernel.c", "v2, a different size\n")
  local r = prepare({ "--config", cfg })
  t:assert_eq(r.stdout, "mine: prepared\n", r.stderr)
  t:assert_eq(count(), before + 1, "an edited input")
  put(dir .. "/src/new.h", "new\n")
  t:assert_eq(prepare({ "--config", cfg }).stdout, "mine: prepared\n", "a new file under an input")
  t:assert_eq(count(), before + 2)
  r = prepare({ "--config", cfg, "--force" })
  t:assert_eq(r.stdout, "mine: prepared\n", r.stderr)
  t:assert_eq(count(), before + 3, "--force")
  cfg = config(copy .. " && true")
  t:assert_eq(prepare({ "--config", cfg }).stdout, "mine: prepared\n", "a new command")
  t:assert_eq(count(), before + 4)
  os.remove(dir .. "/out/initrd")
  r = prepare({ "--config", cfg })
  t:assert_eq(r.stdout, "mine: prepared\n", "the initrd gone: " .. r.stderr)
  t:assert_eq(count(), before + 5)
  t:assert_eq(prepare({ "--config", cfg }).stdout, "mine: up to date\n")
end)

test("a build that fails or makes no kernel: one line naming it; a run then runs nothing", function(t)
  local cfg = config("echo compiling; exit 3")
  local r = prepare({ "--config", cfg })
  t:assert_eq(r.code, 1, r.stderr)
  t:assert_contains(r.stderr, "compiling\n") -- the build's own output is shown
  t:assert_contains(r.stderr, "provium: profile mine: its build (echo compiling; exit 3) failed with exit status 3\n")
  r = pv.run({ "--config", cfg, pv.cases .. "/basic", no_save = true })
  t:assert_eq(r.code, 2, r.stderr)
  t:assert_contains(r.stderr, "failed with exit status 3; nothing ran\n")
  t:assert_eq(r.stdout, "")
  cfg = config("true")
  os.execute("rm -rf " .. pv.q(dir .. "/out"))
  r = prepare({ "--config", cfg })
  t:assert_eq(r.code, 1)
  t:assert_contains(r.stderr, "provium: profiles.mine.kernel: " .. dir .. "/out/vmlinuz: No such file or directory "
    .. "after its build; the build (true) should make it\n")
end)

test("build keys in provium.lua and prepare's arguments: one line, exit 2", function(t)
  local cases = {
    { "mine = { build = '', kernel = 'k', initrd = 'i' }", "profiles.mine.build must be a non-empty shell command" },
    { "mine = { build = 3, kernel = 'k', initrd = 'i' }", "profiles.mine.build must be a non-empty shell command" },
    { "mine = { build_out = 'o', kernel = '/bin/sh', initrd = '/bin/sh' }",
      "profiles.mine.build_out goes with build = \"a command\"" },
    { "mine = { kernel = '{out}/k', initrd = '/bin/sh' }",
      "profiles.mine.kernel: {out}/k uses {out}, the output of a build, but the profile has no build" },
    { "mine = { build = 'true', build_inputs = 'src', kernel = '{out}/k', initrd = '{out}/i' }",
      "profiles.mine.build_inputs must be a list of files and directories" },
    { "mine = { build = 'true', build_out = '{out}/x', kernel = '{out}/k', initrd = '{out}/i' }",
      "profiles.mine.build_out is {out} itself; it cannot use {out}" },
  }
  for _, c in ipairs(cases) do
    local path = dir .. "/bad.lua"
    put(path, "return { profiles = { " .. c[1] .. " } }\n")
    local r = prepare({ "--config", path })
    t:assert_eq(r.code, 2, c[1] .. ": " .. r.stderr)
    t:assert_contains(r.stderr, c[2])
    t:assert_eq(select(2, r.stderr:gsub("\n", "")), 1, "one line: " .. r.stderr)
  end
  local cfg = config(copy)
  local r = prepare({ "--config", cfg, "nosuch" })
  t:assert_eq(r.code, 2)
  t:assert_contains(r.stderr, "profile 'nosuch' is not defined in " .. cfg .. " (its profiles: mine)")
  r = prepare({ "--config", cfg, "--json" })
  t:assert_eq(r.code, 2)
  t:assert_contains(r.stderr, "provium prepare takes [--force] [--config PATH] [PROFILE...]; it runs no tests")
  r = pv.run({ "--force", pv.cases .. "/basic", no_save = true })
  t:assert_eq(r.code, 2)
  t:assert_contains(r.stderr, "--force goes with provium image build or provium prepare")
  put(dir .. "/src/missing-later", "x")
  put(dir .. "/gone.lua", string.format("return { profiles = { mine = { build = 'true', build_inputs = { %q }, "
    .. "kernel = '{out}/k', initrd = '{out}/i' } } }\n", dir .. "/nope"))
  r = prepare({ "--config", dir .. "/gone.lua" })
  t:assert_eq(r.code, 1)
  t:assert_contains(r.stderr, "profiles.mine.build_inputs[1]: " .. dir .. "/nope: No such file or directory")
end)

test("a run builds the profile first and its test boots the kernel from {out}", function(t)
  local cfg = config(copy .. " # run")
  put(dir .. "/tests/boot.test.lua", [[
test("boots the built kernel", function(t)
  local vm = provium:vm("a", "mine")
  vm:boot()
  t:assert_eq(vm:run("echo up").stdout, "up\n")
end)
]])
  local before = count()
  local r = pv.run({ "--config", cfg, "--psi-threshold", "0", dir .. "/tests" })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(count(), before + 1, "built before the file ran")
  t:assert_contains(r.stderr, "provium: profile mine: building: ")
  t:assert_eq(pv.count(r.events, "test_passed"), 1)
  r = pv.run({ "--config", cfg, "--psi-threshold", "0", dir .. "/tests" })
  t:assert_eq(r.code, 0, r.stdout .. r.stderr)
  t:assert_eq(count(), before + 1, "cached the second time")
end)
