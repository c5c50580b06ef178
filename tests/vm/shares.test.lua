-- VM tests on the built-in linux profile: host directories shared into the
-- guest (provium:vm's share option, virtio-fs).
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir .. " && echo from-host > " .. dir .. "/in.txt"))

local vm = provium:vm("s", "linux", { memory = "256M", share = {
  { host = dir, guest = "/src" },
  { host = "lib", guest = "/opt/lib", readonly = true }, -- relative: next to this file
} })
vm:boot()

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

test("a shared directory is mounted before the first op: the guest reads and writes the host's files", function(t)
  t:assert_eq(vm:run("cat /src/in.txt"):assert_ok().stdout, "from-host\n")
  vm:run("echo from-guest > /src/out.txt && mkdir /src/d && echo deep > /src/d/f"):assert_ok()
  t:assert_eq(slurp(dir .. "/out.txt"), "from-guest\n")
  t:assert_eq(slurp(dir .. "/d/f"), "deep\n")
  -- and the host's later writes show in the guest
  local f = assert(io.open(dir .. "/late.txt", "w"))
  f:write("later")
  f:close()
  t:assert_eq(vm:run("cat /src/late.txt"):assert_ok().stdout, "later")
end)

test("readonly = true: the guest cannot write", function(t)
  t:assert(vm:run("ls /opt/lib"):assert_ok().stdout ~= "", "the relative host path is this file's lib/")
  local r = vm:run("touch /opt/lib/nope")
  t:assert(not r:ok())
  t:assert_contains(r.stderr, "Read-only file system")
end)

test("a snapshot of a VM with a share is refused, naming it", function(t)
  local e = t:assert_raises(function() vm:snapshot() end)
  t:assert_contains(e, "cannot migrate a virtio-fs device")
  t:assert_contains(e, "/src")
end)

test("after vm:reset the guest mounts its shares again", function(t)
  vm:reset()
  t:assert_eq(vm:run("cat /src/in.txt"):assert_ok().stdout, "from-host\n")
end)

test("bad shares are one clear error each, before anything boots", function(t)
  local function bad(share, want)
    t:assert_contains(t:assert_raises(function() provium:vm("bad", "linux", { share = share }) end), want)
  end
  bad({ { host = dir .. "/missing", guest = "/x" } }, "No such file or directory")
  bad({ { host = dir .. "/in.txt", guest = "/x" } }, "is not a directory")
  bad({ { host = dir, guest = "relative" } }, "must be an absolute path")
  bad({ { host = dir, guest = "/a b" } }, "without spaces")
  bad({ { host = dir } }, "needs guest")
  bad({ { guest = "/x" } }, "needs host")
  bad({ { host = dir, guest = "/x" }, { host = dir, guest = "/x" } }, "is share[1]'s too")
  bad({ { host = dir, guest = "/x", colour = 1 } }, "colour")
  bad("x", "must be a list")
end)

test("(cleanup) the directory made for this file is removed", function(t)
  t:assert(os.execute("rm -rf " .. dir))
end)
