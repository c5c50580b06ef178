-- VM tests on the built-in linux profile: disks (provium:vm's disks option,
-- vm:disk and the Disk).
local MiB = 1024 * 1024

-- a raw image made here: 4 MiB, "IMAGE-<tag>" in its first sector
local function image(tag)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(("IMAGE-" .. tag):rep(1) .. string.rep("\0", 512 - 6 - #tag))
  f:write(string.rep("\0", 4 * MiB - 512))
  f:close()
  return path
end
local function slurp(path, n)
  local f = assert(io.open(path, "rb"))
  local s = f:read(n)
  f:close()
  return s
end

local overlay_img, ro_img, rw_img = image("overlay"), image("ro"), image("rw")
local vm = provium:vm("db", "linux", { memory = "256M", disks = {
  { id = "data", size = "64M" },
  { id = "base", image = overlay_img },
  { id = "ro", image = ro_img, readonly = true },
  { id = "rw", image = rw_img, writable = true },
} })
vm:boot()

local function head(dev, n)
  return vm:run(("dd if=%s bs=%d count=1 2>/dev/null"):format(dev, n)):assert_ok().stdout
end

test("a fresh disk: its device, size and id; mkfs, mount and files that survive a reset", function(t)
  local d = vm:disk("data")
  t:assert_eq(d:id(), "data")
  t:assert_eq(d:size(), 64 * MiB)
  t:assert_contains(d:device(), "/dev/vd")
  t:assert_eq(vm:run("cat /sys/block/" .. d:device():sub(6) .. "/size").stdout, tostring(64 * MiB // 512) .. "\n")
  vm:run("mke2fs -q " .. d:device() .. " && mkdir -p /mnt/d && mount " .. d:device() ..
    " /mnt/d && echo kept > /mnt/d/f && umount /mnt/d"):assert_ok()
  vm:reset()
  vm:run("mkdir -p /mnt/d && mount " .. d:device() .. " /mnt/d"):assert_ok()
  t:assert_eq(vm:read_file("/mnt/d/f"), "kept\n")
  vm:run("umount /mnt/d"):assert_ok()
end)

test("an image is read through a copy-on-write overlay: the guest's writes never reach it", function(t)
  local dev = vm:disk("base"):device()
  t:assert_eq(head(dev, 13), "IMAGE-overlay")
  t:assert_eq(vm:disk("base"):size(), 4 * MiB)
  vm:run("printf CHANGED | dd of=" .. dev .. " conv=fsync 2>/dev/null"):assert_ok()
  vm:run("echo 3 > /proc/sys/vm/drop_caches"):assert_ok()
  t:assert_eq(head(dev, 7), "CHANGED")
  t:assert_eq(slurp(overlay_img, 13), "IMAGE-overlay")
  t:assert(vm:disk("base"):path() ~= overlay_img)
end)

test("readonly = true: the guest cannot write; writable = true: the image itself is written", function(t)
  local ro = vm:disk("ro"):device()
  t:assert_eq(head(ro, 8), "IMAGE-ro")
  t:assert(not vm:run("printf X | dd of=" .. ro .. " conv=fsync 2>/dev/null"):ok())
  t:assert_eq(slurp(ro_img, 8), "IMAGE-ro")
  vm:run("printf WRITTEN | dd of=" .. vm:disk("rw"):device() .. " conv=fsync 2>/dev/null"):assert_ok()
  t:assert_eq(slurp(rw_img, 7), "WRITTEN")
  t:assert_eq(vm:disk("rw"):path(), rw_img)
end)

test("read_sectors and write_sectors on a paused VM; refused while it runs", function(t)
  local d = vm:disk("data")
  vm:run("printf 'guest wrote this' | dd of=" .. d:device() .. " bs=512 seek=100 conv=fsync 2>/dev/null"):assert_ok()
  local e = t:assert_raises(function() d:read_sectors(100, 1) end)
  t:assert_contains(tostring(e), "is running")
  vm:pause()
  t:assert_eq(d:read_sectors(100, 1):sub(1, 16), "guest wrote this")
  d:write_sectors(200, "host wrote this" .. string.rep("\0", 512 - 15))
  e = t:assert_raises(function() d:write_sectors(200, "short") end)
  t:assert_contains(tostring(e), "not a whole number of 512-byte sectors")
  e = t:assert_raises(function() d:read_sectors(64 * MiB // 512, 1) end)
  t:assert_contains(tostring(e), "past its end")
  e = t:assert_raises(function() vm:disk("base"):read_sectors(0, 1) end)
  t:assert_contains(tostring(e), "qcow2")
  vm:resume()
  vm:run("echo 3 > /proc/sys/vm/drop_caches"):assert_ok()
  t:assert_eq(vm:run("dd if=" .. d:device() .. " bs=512 skip=200 count=1 2>/dev/null | head -c 15").stdout,
    "host wrote this")
end)

test("disk:stats counts the guest's reads, writes, flushes and bytes", function(t)
  local d = vm:disk("data")
  local before = d:stats()
  vm:run("dd if=/dev/zero of=" .. d:device() .. " bs=4096 count=4 seek=10 conv=fsync 2>/dev/null"):assert_ok()
  vm:run("echo 3 > /proc/sys/vm/drop_caches; dd if=" .. d:device() .. " of=/dev/null bs=4096 count=4 skip=20 2>/dev/null"):assert_ok()
  local after = d:stats()
  t:assert(after.writes > before.writes, "writes counted")
  t:assert(after.written_bytes - before.written_bytes >= 16384, "at least the 16 KiB written")
  t:assert(after.flushes > before.flushes, "conv=fsync flushed")
  t:assert(after.reads > before.reads, "reads counted")
  t:assert(after.read_bytes - before.read_bytes >= 16384, "at least the 16 KiB read")
  t:assert_eq(after.failed_writes, 0)
  t:assert_eq(after.faults, 0)
end)

test("hot-plug: attach_disk shows a disk in the running guest", function(t)
  local h = vm:attach_disk({ id = "hot", size = "8M" })
  local dev = h:device()
  t:assert_eq(vm:run("cat /sys/block/" .. dev:sub(6) .. "/serial").stdout, "hot")
  vm:run("mke2fs -q " .. dev .. " && mkdir -p /mnt/h && mount " .. dev .. " /mnt/h && echo in > /mnt/h/f && umount /mnt/h"):assert_ok()
  t:assert_eq(vm:disk("hot"):size(), 8 * 1024 * 1024)
  t:assert_contains(tostring(t:assert_raises(function() vm:attach_disk({ id = "data", size = "1M" }) end)),
    "is taken")
  local again = vm:attach_disk({ id = "hot2", image = overlay_img })
  t:assert_eq(head(again:device(), 13), "IMAGE-overlay")
  t:assert_eq(vm:disk("data"):device():sub(1, 7), "/dev/vd") -- the boot's disks keep theirs
end)

test("detach: the guest lets a hot-plugged disk go; its data stays on the host; the id can be plugged again", function(t)
  local h = vm:disk("hot")
  local name = h:device():sub(6)
  h:detach()
  t:assert_eq(vm:run("test -e /sys/block/" .. name):ok(), false, "gone from the guest")
  t:assert_contains(t:assert_raises(function() h:device() end), "was detached")
  t:assert_contains(t:assert_raises(function() h:fault{} end), "was detached")
  h:detach() -- once is enough: a second does nothing
  -- the filesystem made on it is in its file, readable while the VM runs on
  t:assert_eq(h:read_sectors(2, 1):sub(57, 58), "\x53\xef", "ext2's magic")
  t:assert_contains(t:assert_raises(function() vm:disk("data"):detach() end), "plugged in at boot")
  local again = vm:attach_disk({ id = "hot", size = "4M" })
  t:assert_eq(again:size(), 4 * 1024 * 1024)
  t:assert_eq(vm:disk("hot"):size(), 4 * 1024 * 1024, "vm:disk finds the plugged one")
  again:detach()
  vm:disk("hot2"):detach()
end)

test("bus = \"scsi\": a SCSI disk (/dev/sdX) found by its serial, plugged in and out of the running VM", function(t)
  local v = provium:vm("scsi", "linux", { memory = "128M", disks = { { id = "boot-sd", size = "4M", bus = "scsi" } } })
  v:boot()
  local d = v:disk("boot-sd")
  t:assert_contains(d:device(), "/dev/sd")
  t:assert_eq(v:run("cat /sys/block/" .. d:device():sub(6) .. "/size").stdout, "8192\n")
  local h = v:attach_disk({ id = "late-sd", size = "2M", bus = "scsi" })
  t:assert_contains(h:device(), "/dev/sd")
  local name = d:device():sub(6)
  d:detach() -- a SCSI disk given at boot can go too
  t:assert_eq(v:run("test -e /sys/block/" .. name):ok(), false)
  t:assert_contains(t:assert_raises(function() provium:vm("x", "linux", { disks = { { id = "a", size = "1M", bus = "ide" } } }) end),
    'bus must be "virtio"')
  v:shutdown()
end)

test("a snapshot is refused for a disk written in place or hot-plugged, naming it", function(t)
  local e = t:assert_raises(function() vm:snapshot() end)
  t:assert_contains(tostring(e), 'disk "rw" is its image written in place (writable = true)')
  local hp = provium:vm("hp", "linux", { memory = "128M", disks = {} })
  hp:boot()
  hp:attach_disk({ id = "late", size = "1M" })
  e = t:assert_raises(function() hp:snapshot() end)
  t:assert_contains(tostring(e), 'disk "late" was hot-plugged')
  hp:shutdown()
end)

test("a snapshot carries the disks: restore brings back their data and keeps the fault rules", function(t)
  local v = provium:vm("snap", "linux", { memory = "128M",
    disks = { { id = "data", size = "64M" }, { id = "p", size = "8M", faults = false }, { id = "o", image = overlay_img },
      { id = "s", size = "8M", bus = "scsi" } } })
  v:boot()
  local dev = v:disk("data"):device()
  v:run("mke2fs -q " .. dev .. " && mkdir -p /mnt/d && mount " .. dev .. " /mnt/d && echo one > /mnt/d/f"):assert_ok()
  v:run("echo pdata | dd of=" .. v:disk("p"):device() .. " conv=sync 2>/dev/null"):assert_ok()
  v:run("printf before | dd of=" .. v:disk("o"):device() .. " bs=512 seek=10 conv=sync 2>/dev/null"):assert_ok()
  v:disk("data"):fault{ op = "read", offset = "60M", length = 512 }
  v:run("printf scsi1 | dd of=" .. v:disk("s"):device() .. " bs=512 conv=sync,fsync 2>/dev/null"):assert_ok()
  local snap = v:snapshot()
  t:assert(snap:size() > 64 * 1024, "disk data counted: " .. snap:size())
  v:run("echo two > /mnt/d/f && sync"):assert_ok()
  v:run("echo XXXXX | dd of=" .. v:disk("p"):device() .. " conv=sync,fsync 2>/dev/null"):assert_ok()
  v:run("printf after! | dd of=" .. v:disk("o"):device() .. " bs=512 seek=10 conv=sync,fsync 2>/dev/null"):assert_ok()
  v:restore(snap)
  v:run("echo 3 > /proc/sys/vm/drop_caches"):assert_ok()
  t:assert_eq(v:run("cat /mnt/d/f"):assert_ok().stdout, "one\n")
  t:assert_eq(v:run("dd if=" .. v:disk("p"):device() .. " bs=6 count=1 2>/dev/null"):assert_ok().stdout, "pdata\n")
  t:assert_eq(v:run("dd if=" .. v:disk("o"):device() .. " bs=512 skip=10 count=1 2>/dev/null | head -c 6").stdout,
    "before")
  t:assert_eq(#v:disk("data"):faults(), 1, "the rules stay")
  t:assert_eq(v:run("dd if=" .. v:disk("s"):device() .. " bs=512 count=1 iflag=direct 2>/dev/null | head -c 5").stdout,
    "scsi1")
  t:assert(not v:run("dd if=" .. dev .. " of=/dev/null bs=512 skip=122880 count=1 iflag=direct"):ok())
  t:assert_eq(slurp(overlay_img, 13), "IMAGE-overlay", "the image is untouched")
  v:shutdown()
end)

test("a VM made without disks has no ports to plug one into", function(t)
  local plain = provium:vm("plain", "linux", { memory = "128M" })
  plain:boot()
  local e = t:assert_raises(function() plain:attach_disk({ id = "x", size = "1M" }) end)
  t:assert_contains(tostring(e), "give provium:vm a disks list (an empty one is enough)")
  plain:shutdown()
end)

test("bad disk options are one clear error each, before anything boots", function(t)
  local function bad(disks, want)
    local e = t:assert_raises(function() provium:vm("bad", "linux", { disks = disks }) end)
    t:assert_contains(tostring(e), want)
  end
  bad({ { id = "x", size = "abc" } }, "abc")
  bad({ { id = "x", image = "/nonexistent/disk.img" } }, "No such file or directory")
  bad({ { id = "x" } }, "give either size (a fresh disk) or image")
  bad({ { id = "x", size = "1M", image = ro_img } }, "give either size")
  bad({ { size = "1M" } }, "needs an id")
  bad({ { id = "x", size = "1M" }, { id = "x", size = "1M" } }, "is taken by disks[1]")
  bad({ { id = "a/b", size = "1M" } }, "letters, digits")
  bad({ { id = "x", size = "1000" } }, "whole number of 512-byte sectors")
  bad({ { id = "x", size = "1M", readonly = true } }, "readonly and writable are for an image")
  bad({ { id = "x", image = ro_img, readonly = true, writable = true } }, "readonly and writable together")
  bad({ { id = "x", size = "1M", bogus = 1 } }, "bogus")
  bad("data", "must be a list")
  t:assert_contains(tostring(t:assert_raises(function() vm:disk("nope") end)), "has no disk \"nope\"")
end)

test("(cleanup) the images made for this file are removed", function(t)
  for _, p in ipairs({ overlay_img, ro_img, rw_img }) do
    t:assert(os.remove(p))
  end
end)
