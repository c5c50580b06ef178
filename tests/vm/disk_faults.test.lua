-- VM tests on the built-in linux profile: faults the guest sees and power
-- cuts (disk:fault, disk:power_cut) on disks through provium's disk server.
local MiB = 1024 * 1024

local vm = provium:vm("db", "linux", { memory = "256M", disks = {
  { id = "data", size = "64M" },
  { id = "s1", size = "8M", seed = 7 },
  { id = "s2", size = "8M", seed = 7 },
  { id = "plain", size = "8M", faults = false },
  { id = "sc", size = "16M", bus = "scsi" },
} })
-- given before the boot: the kernel's first look at the disk meets it
local early = vm:disk("s1"):fault{ op = "read", offset = 0, length = 512, once = true }
vm:boot()

-- a direct 4 KiB read (or write) of block `blk` of dev: true when it worked
local function io4k(dev, blk, write)
  local cmd = write and ("dd if=/dev/zero of=%s bs=4096 count=1 seek=%d oflag=direct")
    or ("dd if=%s of=/dev/null bs=4096 count=1 skip=%d iflag=direct")
  return vm:run(cmd:format(dev, blk) .. " 2>/dev/null"):ok()
end

test("a fault given before the boot met the kernel's first read, once", function(t)
  t:assert_eq(early:hits(), 1)
  local f = vm:disk("s1"):faults()[1]
  t:assert_eq(f.active, false, "once: spent")
  t:assert_eq(f.op, "read")
  t:assert_eq(f.errno, "EIO")
  early:clear()
  t:assert_eq(#vm:disk("s1"):faults(), 0)
end)

test("a read fault at an offset fails exactly that read in the guest; clearing it heals", function(t)
  local d = vm:disk("data")
  local dev = d:device()
  local f = d:fault{ op = "read", offset = 1 * MiB, length = 4096 }
  t:assert(not io4k(dev, 256), "the faulted block's read fails")
  t:assert(io4k(dev, 255) and io4k(dev, 257), "its neighbours read")
  t:assert(io4k(dev, 256, true), "writes to it are not faulted")
  t:assert_contains(vm:run("dmesg | grep 'I/O error' | tail -1").stdout, "sector 2048")
  t:assert_eq(f:hits(), 1)
  t:assert_eq(d:stats().faults >= 1, true)
  f:clear()
  t:assert(io4k(dev, 256), "healed")
  t:assert_eq(f:hits(), 0, "a cleared fault counts nothing")
end)

test("a write fault with after = 10: ten writes pass, then every one fails", function(t)
  local d = vm:disk("data")
  local f = d:fault{ op = "write", after = 10 }
  local r = vm:run("for i in $(seq 1 13); do dd if=/dev/zero of=" .. d:device() ..
    " bs=4096 count=1 seek=$((1000 + i)) oflag=direct 2>/dev/null || echo fail $i; done")
  t:assert_eq(r.stdout, "fail 11\nfail 12\nfail 13\n")
  t:assert_eq(f:hits(), 3)
  f:clear()
end)

test("ENOSPC once: the guest's write fails, the next one works; the rule records it", function(t)
  local d = vm:disk("data")
  local before = d:stats().failed_writes
  d:fault{ op = "write", errno = "ENOSPC", once = true }
  t:assert(not io4k(d:device(), 3000, true), "the write fails")
  t:assert(io4k(d:device(), 3000, true), "the next one works")
  local f = d:faults()[1]
  t:assert_eq(f.errno, "ENOSPC")
  t:assert_eq(f.hits, 1)
  t:assert_eq(f.active, false)
  t:assert_eq(d:stats().failed_writes, before + 1, "QEMU saw the failed write")
  d:clear_faults()
end)

test("on a SCSI disk, an injected ENOSPC reaches the guest's write as ENOSPC (thin provisioning's sense code)", function(t)
  local d = vm:disk("sc")
  t:assert_contains(d:device(), "/dev/sd")
  d:fault{ op = "write", errno = "ENOSPC", once = true }
  local r = vm:run("dd if=/dev/zero of=" .. d:device() .. " bs=4096 count=1 seek=7 oflag=direct")
  t:assert(not r:ok())
  t:assert_contains(r.stderr, "No space left on device")
  t:assert(io4k(d:device(), 7, true), "the next write works")
  -- an I/O error the SCSI layer retries: once is absorbed, a lasting one fails after the retries
  local f = d:fault{ op = "write", errno = "EIO", once = true }
  t:assert(io4k(d:device(), 7, true), "retried")
  t:assert_eq(f:hits(), 1)
  f = d:fault{ op = "write", errno = "EIO" }
  r = vm:run("dd if=/dev/zero of=" .. d:device() .. " bs=4096 count=1 seek=7 oflag=direct")
  t:assert_contains(r.stderr, "Input/output error")
  t:assert(f:hits() > 1, "the guest retried: " .. f:hits())
  d:clear_faults()
end)

test("a delay is latency: the read works and takes at least the delay", function(t)
  local d = vm:disk("data")
  local f = d:fault{ op = "read", offset = 2 * MiB, length = 4096, delay = "400ms" }
  local r = vm:run("a=$(cut -d' ' -f1 /proc/uptime); dd if=" .. d:device() ..
    " of=/dev/null bs=4096 count=1 skip=512 iflag=direct 2>/dev/null; s=$?; b=$(cut -d' ' -f1 /proc/uptime);" ..
    " echo $s $a $b")
  local s, a, b = r.stdout:match("(%d+) ([%d.]+) ([%d.]+)")
  t:assert_eq(s, "0", "no error")
  t:assert(tonumber(b) - tonumber(a) >= 0.39, "took " .. (tonumber(b) - tonumber(a)) .. " s")
  t:assert_eq(f:hits(), 1)
  f:clear()
end)

test("probabilistic faults draw from the disk's seed: two disks of one seed fail alike", function(t)
  local pattern = {}
  for _, id in ipairs({ "s1", "s2" }) do
    local d = vm:disk(id)
    d:fault{ op = "read", probability = 0.5 }
    local r = vm:run("for i in $(seq 0 23); do dd if=" .. d:device() ..
      " of=/dev/null bs=4096 count=1 skip=$i iflag=direct 2>/dev/null && echo -n 1 || echo -n 0; done")
    pattern[id] = r.stdout
    d:clear_faults()
  end
  t:assert_eq(pattern.s1, pattern.s2)
  t:assert(pattern.s1:find("0") and pattern.s1:find("1"), "some fail, some pass: " .. pattern.s1)
end)

test("bad faults are one clear error each", function(t)
  local d = vm:disk("data")
  t:assert_contains(t:assert_raises(function() d:fault{ errno = "EAGAIN" } end), "unknown errno EAGAIN")
  t:assert_contains(t:assert_raises(function() d:fault{ op = "erase" } end), "invalid option 'erase'")
  t:assert_contains(t:assert_raises(function() d:fault{ probability = 2 } end), "probability must be")
  t:assert_contains(t:assert_raises(function() d:fault{ op = "flush", offset = 0 } end), "a flush has no byte range")
  t:assert_contains(t:assert_raises(function() d:fault{ offset = "1G" } end), "past the disk's end")
  t:assert_contains(t:assert_raises(function() d:fault{ after = -1 } end), "at least 0")
  t:assert_contains(t:assert_raises(function() d:fault{ color = "red" } end), "color")
  t:assert_contains(t:assert_raises(function() vm:disk("plain"):fault{} end), "plain file")
  t:assert_contains(t:assert_raises(function() vm:disk("plain"):power_cut() end), "plain file")
  t:assert_eq(#d:faults(), 0, "nothing was added")
end)

-- last: it powers the VM off
test("a power cut keeps every flushed write and loses the rest, on the raw device", function(t)
  local d = vm:disk("data")
  local dev = d:device()
  local function put(sector, text, flush)
    vm:run(("printf '%s' | dd of=%s bs=512 seek=%d conv=sync%s 2>/dev/null"):format(text, dev, sector,
      flush and ",fsync" or "")):assert_ok()
  end
  put(100, "kept-1", true)
  put(101, "lost-1", false)
  put(102, "kept-2", true) -- flushes lost-1 with it
  put(103, "lost-2", false)
  put(104, "lost-3", false)
  t:assert(d:stats().unflushed_bytes >= 1024, "writes wait in the cache")
  d:power_cut()
  t:assert_eq(vm.state, "created")
  local got = d:read_sectors(100, 5)
  t:assert_eq(got:sub(1, 6), "kept-1")
  t:assert_eq(got:sub(513, 518), "lost-1")
  t:assert_eq(got:sub(1025, 1030), "kept-2")
  t:assert_eq(got:sub(1537, 1542), ("\0"):rep(6))
  t:assert_eq(got:sub(2049, 2054), ("\0"):rep(6))
  vm:boot()
  local r = vm:run("dd if=" .. vm:disk("data"):device() .. " bs=512 skip=100 count=3 2>/dev/null | tr -d '\\000'")
  t:assert_eq(r:assert_ok().stdout, "kept-1lost-1kept-2")
end)

test("a power cut on a mounted filesystem: fsynced files survive, the rest is gone", function(t)
  local dev = vm:disk("data"):device()
  vm:run("mke2fs -q " .. dev .. " && mkdir -p /mnt/d && mount " .. dev .. " /mnt/d"):assert_ok()
  vm:run("echo durable > /mnt/d/a && sync /mnt/d/a /mnt/d"):assert_ok()
  vm:run("echo volatile > /mnt/d/b"):assert_ok()
  vm:disk("data"):power_cut()
  vm:boot()
  dev = vm:disk("data"):device()
  vm:run("mkdir -p /mnt/d && mount " .. dev .. " /mnt/d"):assert_ok()
  t:assert_eq(vm:run("cat /mnt/d/a"):assert_ok().stdout, "durable\n")
  t:assert_eq(vm:run("test -e /mnt/d/b"):ok(), false, "the unsynced file is gone")
end)

test("power_cut of a VM that is not running is refused", function(t)
  local off = provium:vm("off", "linux", { disks = { { id = "x", size = "1M" } } })
  t:assert_contains(t:assert_raises(function() off:disk("x"):power_cut() end), "is created")
end)
