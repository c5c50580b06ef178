-- Debian profiles for tests/vm-debian (run.sh runs them; docs/images.md).
return {
  roots = { "." },
  profiles = {
    -- the agent is PID 1; busybox and one small package
    deb = { base = "debian", packages = { "busybox", "netcat-openbsd" } },
    -- systemd is PID 1, the agent a unit
    debsd = { base = "debian", init = "systemd", packages = { "busybox" } },
  },
}
