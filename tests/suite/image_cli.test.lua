-- provium image list|build|clean without building anything (docs/cli.md,
-- "provium image"): usage errors, what list says of an unbuilt profile, and
-- clean in an image directory of its own. Builds and boots are in
-- tests/vm-debian.
local pv = require("lib.pv")

local dir = pv.tmp("images")
local cfg = pv.tmp("image_cli.lua")
local f = assert(io.open(cfg, "w"))
f:write([[return { profiles = {
  web = { base = "debian", packages = { "curl" } },
} }
]])
f:close()
os.execute("mkdir -p '" .. dir .. "/debian-0123456789abcdef' '" .. dir .. "/debian-fedcba9876543210.failed'")
local env = "PROVIUM_IMAGE_DIR='" .. dir .. "'"

local function image(args)
  local a = { "image", no_save = true, env = env }
  for _, x in ipairs(args) do a[#a + 1] = x end
  return pv.run(a)
end

test("provium image: usage errors are one line and exit 2", function(t)
  local cases = {
    { {}, "provium image needs a command: list, build, clean (see --help)" },
    { { "frobnicate" }, "unknown image command 'frobnicate' (commands: list, build, clean)" },
    { { "build", "--config", cfg, "nosuch" }, "profile 'nosuch' is not defined in " },
    { { "clean", "--config", cfg }, "needs the profiles whose images to delete, or --unused" },
    { { "clean", "--config", cfg, "--all", "--unused" }, "takes --all or --unused, not both" },
    { { "clean", "--config", cfg, "--all", "web" }, "takes profiles or --all, not both" },
    { { "list", "--force" }, "--force goes with provium image build" },
    { { "build", "--unused" }, "--unused goes with provium image clean" },
    { { "list", "web" }, "provium image list takes no arguments" },
  }
  for _, c in ipairs(cases) do
    local r = image(c[1])
    t:assert_eq(r.code, 2, table.concat(c[1], " ") .. ": " .. r.stderr)
    t:assert_contains(r.stderr, c[2])
    t:assert_eq(select(2, r.stderr:gsub("\n", "")), 1, "one line: " .. r.stderr)
  end
  local r = pv.run({ "list", "--all", no_save = true })
  t:assert_eq(r.code, 2)
  t:assert_contains(r.stderr, "--all goes with provium image clean")
end)

test("provium image list: an unbuilt profile, and images no profile uses", function(t)
  local r = image({ "list", "--config", cfg })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_contains(r.stdout, "web              debian    not built (provium image build web; a run builds it first)")
  t:assert_contains(r.stdout, dir .. "/debian-0123456789abcdef (no profile uses it: provium image clean --unused removes it)")
end)

test("provium image clean --unused removes unused images and failed builds; a profile's own is named", function(t)
  local r = image({ "clean", "--config", cfg, "web" })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_eq(r.stdout, "web: not built\n")
  r = image({ "clean", "--config", cfg, "--unused" })
  t:assert_eq(r.code, 0, r.stderr)
  t:assert_contains(r.stdout, "removed " .. dir .. "/debian-0123456789abcdef\n")
  t:assert_contains(r.stdout, "removed " .. dir .. "/debian-fedcba9876543210.failed\n")
  t:assert_eq(io.open(dir .. "/debian-0123456789abcdef"), nil)
  r = image({ "clean", "--config", cfg, "--all" })
  t:assert_eq(r.stdout, "nothing to remove\n")
end)
