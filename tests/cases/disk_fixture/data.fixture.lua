-- A VM whose 256 MiB disk holds a filesystem with 4 MiB of random data.
local v = provium:vm("db", "linux", { disks = { { id = "data", size = "256M" } } })
v:boot()
local dev = v:disk("data"):device()
v:run("mke2fs -q " .. dev .. " && mkdir -p /mnt/d && mount " .. dev .. " /mnt/d && " ..
  "dd if=/dev/urandom of=/mnt/d/blob bs=1M count=4 2>/dev/null && md5sum /mnt/d/blob > /mnt/d/sum && " ..
  "echo seeded > /mnt/d/state && sync"):assert_ok()
return v:snapshot()
