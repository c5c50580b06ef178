-- Run by tests/suite/warm_boot.test.lua with its own cache: how two VMs of
-- one profile boot. WANT: the boot kinds of alpha and beta ("cold,warm");
-- MEM, BOOT: their memory and boot options.
local want = os.getenv("WANT") or "cold,warm"
local opts = { memory = os.getenv("MEM") or "256M", boot = os.getenv("BOOT") }

test("two VMs of one profile", function(t)
  local a <close> = provium:vm("alpha", "linux", opts)
  t:assert_eq(a.boot_kind, nil, "no boot yet")
  a:boot()
  local b <close> = provium:vm("beta", "linux", opts)
  b:boot()
  t:assert_eq(a.boot_kind .. "," .. b.boot_kind, want)
  t:assert_eq(a:run("hostname"):assert_ok().stdout, "alpha\n")
  t:assert_eq(b:run("hostname"):assert_ok().stdout, "beta\n")
  t:assert_eq(b:run("echo ok"):assert_ok().stdout, "ok\n")
end)
