-- api_annotations.lua - the Lua API of test files, for editors: one entry
-- per name the runner binds (the luaL_Reg tables and method tables of
-- src/runner/l*.c), with its signature and a line or two from
-- docs/lua-api.md. `provium lsp-setup` turns it into lua-language-server
-- annotations (src/sched/lsp_gen.lua, embedded in the binary at build
-- time); tests/suite/lsp.test.lua walks the bindings of a real runner and
-- fails when a bound name has no entry here or an entry names nothing bound,
-- and checks every options class against the keys its call accepts.
--
-- A class:
--   name     the LuaLS class name
--   bind     where the runner keeps its members: "global:NAME" (a global
--            table), "mt:NAME" (the __index of the registry's metatable
--            NAME; for provium.vm, the methods table behind its __index)
--   global   the global variable of this type (provium, json)
--   options  true for an options table; `what` then names the calls that
--            check its keys (the message prefix of opts_check), and its
--            fields are exactly the keys they accept
--   open     options whose other keys are free (test meta)
--   parent   a class whose fields this one has too
--   fields   { name, type, doc }
--   methods  { name, signature, doc [, overloads =] [, from =] }
-- A class with neither bind nor options describes a table a call returns.
--
-- A signature is "(p1: T, p2?: T, ...: T): R1, R2". It is a method (called
-- with `:`) unless it starts with ".", a function (called with `.`);
-- `method_too = true` on a function says that `:` works as well. Overloads
-- are signatures too. A method `from = CLASS` has that class's signature
-- and doc (the Worker's guest calls are the VM's).

local dur = "provium.Duration"

return {
  aliases = {
    { "provium.Duration", "number|string", 'Seconds (a number), or a string: "500ms", "5s", "5m", "2h".' },
    { "provium.Size", "integer|string", 'Bytes (a number), or a string: "512K", "256M", "2G", "1T" (binary units).' },
    { "provium.Mode", "integer|string", 'A permission mode: a number (420, 0x1ed) or an octal string ("0644"), 0 to 07777.' },
    { "provium.Signal", "integer|string",
      'A signal number, or HUP, INT, QUIT, KILL, USR1, USR2, TERM, CONT, STOP (with or without SIG, upper case).' },
    { "provium.VMState", '"created"|"running"|"paused"|"dead"|"shut down"', "Where a VM is (vm.state)." },
    { "provium.Cmd", "string|string[]", "A shell command (run by /bin/sh -c) or an argv array." },
    { "provium.Member", "provium.VM|string", "A VM on the bridge, or its name." },
  },

  -- global functions (the global tables are classes with `global`)
  globals = {
    { "test", ".(name: string, meta: provium.Meta, fn: fun(t: provium.TestContext))",
      "Registers a test; `fn(t)` runs later, in file order. Names are non-empty UTF-8, unique within the file.\n" ..
      "Only at file scope.",
      overloads = { ".(name: string, fn: fun(t: provium.TestContext))" } },
    { "todo", ".(reason?: string)", 'At file scope: every test of the file is skipped with `reason` (default "todo").' },
    { "wait_until", ".(pred: fun(): T, opts?: provium.WaitOptions): T",
      "Calls `pred()` until it returns a truthy value, and returns that value. On timeout (default 10s) it fails\n" ..
      "the test naming `desc`; an error raised by `pred` propagates at once.",
      generic = "T" },
  },

  classes = {
    -- ---- the test file's globals ------------------------------------------
    {
      name = "provium.Lab", bind = "global:provium", global = "provium",
      doc = "The `provium` global: VMs, bridges, fixtures, snapshots and the file's settings.",
      fields = {
        { "timeout", dur, "This file's timeout (default 5m); --timeout caps it." },
        { "reset_between_tests", "boolean",
          "Snapshot every running VM after the file's top-level code and restore them before each test after the first." },
        { "[string]", "provium.VM", "`provium.<name>`: a VM of this file, by name." },
      },
      methods = {
        { "claim", "(t: provium.Claim)",
          "What the file needs from the pool, once per file, at file scope. A literal claim is reserved at dispatch." },
        { "vm", "(name: string, profile: string, opts?: provium.VMOptions): provium.VM",
          "Creates a VM (no host resources until its boot). Defaults: 256M, 1 cpu. Names are unique among the file's live VMs.",
          overloads = { "(name: string): provium.VM?" } },
        { "boot", "(opts?: provium.LabBootOptions)", "Boots every created VM of the file with one pool acquisition." },
        { "bridge", "(name: string, opts?: provium.BridgeOptions): provium.Bridge",
          "Makes a bridge (a virtual Ethernet segment provium switches); with one argument, looks one up." },
        { "snapshot", "(): provium.LabSnapshot",
          "Snapshots every running VM of the file, and its bridges' cuts and impairments." },
        { "restore", "(snap: provium.LabSnapshot)", "Restores each VM (and bridge) of a provium:snapshot(); each must still be running." },
        { "pause", "()", "Pauses every running VM of the file that is not paused yet." },
        { "resume", "()", "Resumes every paused VM of the file." },
        { "barrier", "(name: string, count: integer, timeout?: provium.Duration): boolean",
          "Waits until `count` callers from any file of the run have arrived at `name`: true then, false after\n" ..
          "`timeout` (default 60s)." },
        { "depends_on_file", "(path: string): string",
          "Returns the resolved host path; in a fixture the file's contents become part of the cache key\n" ..
          "(the path must be a literal string)." },
        { "vm_fixture", ".(name: string, opts?: provium.VMFixtureOptions): provium.VM",
          "A running VM resumed from fixture `name` (root-relative, without .fixture.lua), built first if not cached.",
          method_too = true },
        { "lab_fixture", ".(name: string, opts?: provium.LabFixtureOptions): table<string, provium.VM>",
          "The VMs of a fixture that returned provium:snapshot(), by name (each also provium.<name>).",
          method_too = true },
      },
    },
    {
      name = "provium.Json", bind = "global:json", global = "json",
      doc = "The `json` global: Debian's lua-cjson with UTF-8 checks (`require(\"cjson\")` is the module without them).",
      fields = {
        { "null", "lightuserdata", "The JSON null (compare with ==); json.decode gives it for null, so arrays keep their length." },
      },
      methods = {
        { "encode", ".(v: any): string",
          "The JSON text of `v`; an empty table is {}. A string that is not valid UTF-8 raises." },
        { "decode", ".(s: string): any",
          "The value of JSON text `s`; null is json.null. Text that is not valid UTF-8 raises." },
      },
    },
    {
      name = "provium.TestContext", bind = "mt:provium.test",
      doc = "The test handle `t` a test function gets.",
      fields = {
        { "name", "string", "The test's name." },
        { "meta", "provium.Meta", "The test's meta table." },
      },
      methods = {
        { "assert", "(c: any, msg?: string)", "Fails the test unless `c` is truthy." },
        { "assert_eq", "(a: any, b: any, msg?: string)",
          "Fails unless `a` equals `b`; tables compare deeply (a table with __eq uses it)." },
        { "assert_neq", "(a: any, b: any, msg?: string)", "Fails if `a` equals `b` (deeply, as assert_eq)." },
        { "assert_contains", "(hay: string|any[], needle: any, msg?: string)",
          "Fails unless `needle` is a substring of the string `hay` (plain, no patterns) or an element of the array." },
        { "assert_raises", "(fn: function, msg?: string): any",
          "Fails unless `fn()` raises; returns the error (an assertion's message as a string)." },
        { "fail", "(msg?: string)", "Fails the test now." },
        { "skip", "(reason?: string)", "Ends the test as skipped." },
        { "log", "(...: any)", "A log line (values joined by tabs), shown with the test if it fails." },
        { "pause", "(vars?: table<string, any>, message?: string)",
          "Under `provium --debug`, repl or shell: a Lua prompt with the file's VMs (and `vars`); otherwise a log line.\n" ..
          "The test's clock stops meanwhile." },
      },
    },

    -- ---- VMs ---------------------------------------------------------------
    {
      name = "provium.VM", bind = "mt:provium.vm",
      doc = "A virtual machine of this file (provium:vm).",
      fields = {
        { "name", "string", "Its name." },
        { "profile", "string", "Its profile." },
        { "state", "provium.VMState", "created, running, paused (running, but vm:pause()d), dead or shut down." },
        { "boot_kind", '"cold"|"warm"|"fixture"|"snapshot"|nil', "How its last boot went: its kernel booted (cold, a reset too), its profile's template resumed (warm), a fixture resumed, vm:restore(); nil before a boot." },
        { "cid", "integer?", "Its vsock cid (unique per run, >= 3), once booted." },
      },
      methods = {
        { "boot", "(opts?: provium.BootOptions): provium.VM",
          "Boots it and returns it; waits for the guest agent's hello (default 180s under TCG, 30s under KVM)." },
        { "shutdown", "()", "Stops the VM and releases its resources." },
        { "run", "(cmd: provium.Cmd, opts?: provium.RunOptions): provium.RunResult",
          "Runs `cmd` in the guest and waits for it." },
        { "run_async", "(cmd: provium.Cmd, opts?: provium.RunOptions): provium.Process",
          "Starts `cmd` in the guest; returns its Process." },
        { "read_file", "(path: string): string", "The bytes of a guest file." },
        { "write_file", "(path: string, data: string, opts?: provium.WriteFileOptions)",
          "Writes `data` (any bytes) to a guest file (mode default 0644, applied exactly)." },
        { "stat", "(path: string): provium.Stat", "lstat of a guest path." },
        { "listdir", "(path: string): string[]", "The names in a guest directory, sorted." },
        { "mkdir", "(path: string, opts?: provium.MkdirOptions)", "Makes a guest directory." },
        { "unlink", "(path: string)", "Removes a guest file." },
        { "rename", "(from: string, to: string)", "Renames a guest path." },
        { "open_file", "(path: string, opts?: provium.OpenFileOptions): provium.File",
          "Opens a guest file; returns a File handle held by the guest agent." },
        { "tail_file", "(path: string, opts?: provium.TailOptions): provium.Stream",
          "A guest file followed as it grows (as tail -f), as a Stream; from its beginning unless `start` says otherwise." },
        { "push_file", "(host_path: string, guest_path: string, opts?: provium.PushFileOptions)",
          "Copies a host file into the guest; a relative host path resolves against the calling Lua file's directory." },
        { "batch", "(fn: fun(b: provium.Batch)): any[]",
          "Sends the ops `fn` queues on `b` in one write; returns one result per op, in order." },
        { "console", "(): provium.Console", "The VM's serial console." },
        { "clock", "(): provium.Clock", "The guest's wall clock." },
        { "rng_seed", "(): string?",
          "The seed of the VM's current boot as a decimal string; before the boot the given rng_seed, or nil." },
        { "pause", "()", "Stops the guest (QMP stop): vCPUs and clocks stand still; vm.state is paused." },
        { "resume", "()", "Lets a paused guest run on." },
        { "reset", "()", "A hard reset in the same QEMU; returns once the agent said hello again." },
        { "power_button", "()", "Presses the ACPI power button." },
        { "boot_count", "(): integer", "How many times the VM booted (boots, fixture resumes and resets)." },
        { "snapshot", "(): provium.Snapshot", "Saves the running VM's whole state; the VM runs on." },
        { "restore", "(snap: provium.Snapshot)", "Replaces the VM's QEMU with one resumed from `snap` (same memory and cpus)." },
        { "syscall", "(nr: integer, ...: integer): provium.SyscallResult",
          "syscall(nr, a1, ..., a6) in the guest agent's process; a failure is a result (look at errno).",
          overloads = { "(nr: integer, opts: provium.SyscallOptions): provium.SyscallResult" } },
        { "syscall_async", "(nr: integer, ...: integer): provium.Call",
          "The same call on a thread of the agent while it serves other ops; returns a Call.",
          overloads = { "(nr: integer, opts: provium.SyscallOptions): provium.Call" } },
        { "ioctl", "(target: string|provium.File|integer, request: integer, data?: string|integer, opts?: provium.IoctlOptions): provium.IoctlResult",
          "ioctl(fd, request, arg) on a guest path, a File or an fd of the agent; a string `data` is a buffer, returned as out_data." },
        { "read_mem", "(addr: integer, len: integer): string?, integer?, string?",
          "`len` bytes (at most 1 MiB) of the agent's memory at `addr`; nil, errno, message for an unmapped address." },
        { "spawn_worker", "(opts?: provium.WorkerOptions): provium.Worker",
          "A second agent process in the guest with those credentials and namespaces." },
        { "disk", "(id: string): provium.Disk", "A disk of the `disks` option (or one attached later)." },
        { "attach_disk", "(spec: provium.DiskSpec): provium.Disk",
          "Plugs a disk into the running VM; returns once the guest shows it. Needs provium:vm's `disks` (an empty list is enough)." },
        { "ip", "(bridge?: provium.Bridge|string): string", "Its address on that bridge (optional when on one bridge)." },
        { "mac", "(bridge?: provium.Bridge|string): string", "Its MAC on that bridge." },
        { "nic", "(bridge?: provium.Bridge|string): provium.Nic", "Its NIC on that bridge." },
        { "forward", "(guest_port: integer, bridge?: provium.Bridge|string): string",
          '"127.0.0.1:PORT": a host loopback port that reaches `guest_port` of the VM.' },
      },
    },
    {
      name = "provium.RunResult", bind = "mt:provium.runresult",
      doc = "How a command ended (vm:run, p:wait).",
      fields = {
        { "exit_code", "integer?", "Its exit code; nil unless it exited." },
        { "stdout", "string", "Its stdout (bytes)." },
        { "stderr", "string", "Its stderr (bytes)." },
        { "status", '"exited"|"signalled"|"timed_out"', "How it ended." },
        { "signal", "integer?", "The signal that ended it." },
        { "timed_out", "boolean", "Whether its timeout killed it." },
        { "cmd", "provium.Cmd", "The command." },
        { "host_timeout", "string?", "Set when the guest did not answer by 2 s past the timeout." },
      },
      methods = {
        { "ok", "(): boolean", "Exited with 0." },
        { "assert_ok", "(): provium.RunResult",
          "Fails the test unless ok(), showing the command, how it ended, stdout and stderr; returns the result." },
      },
    },
    {
      name = "provium.Process", bind = "mt:provium.process",
      doc = "A guest process started with vm:run_async.",
      methods = {
        { "wait", "(timeout?: provium.Duration): provium.RunResult",
          "Waits for it to end; fails the test if it still runs after `timeout` (it keeps running)." },
        { "kill", "(sig?: provium.Signal)", "Sends `sig` (default TERM) to its whole process group." },
        { "signal", "(sig?: provium.Signal)", "The same as p:kill." },
        { "status", '(): "running"|"exited"|"signalled"|"timed_out", integer?',
          "Where it is, without waiting, and the exit code or signal once it ended." },
        { "pid", "(): integer", "Its guest pid." },
        { "stdin_write", "(data: string)", "Writes to its stdin (a pipe)." },
        { "close_stdin", "()", "Closes its stdin." },
        { "stdout_stream", "(opts?: provium.StreamOptions): provium.Stream", "Its stdout as a Stream." },
        { "stderr_stream", "(opts?: provium.StreamOptions): provium.Stream", "Its stderr as a Stream." },
        { "close", "()", "Closes it now (killed with SIGKILL unless waited for), as the end of its scope would." },
      },
    },
    {
      name = "provium.Stream", bind = "mt:provium.stream",
      doc = "Output read as it comes: a process's stdout or stderr, a followed guest file, or the console.",
      methods = {
        { "next", "(timeout?: provium.Duration|provium.ReadOptions): string?",
          "Every byte that arrived unread; waits for some (default 30s) if there is none. nil once ended and read." },
        { "read_until", "(pattern: string, timeout?: provium.Duration|provium.ReadOptions): string",
          "Waits (default 30s) until the Lua pattern matches the unread bytes; returns them through the match." },
        { "expect", "(pattern: string, timeout?: provium.Duration|provium.ReadOptions): string",
          "The same wait; returns the match, or the pattern's captures." },
        { "drain", "(timeout?: provium.Duration|provium.ReadOptions): string",
          "Everything until the stream ends or `timeout` passes (without one: what has arrived)." },
        { "eof", "(): boolean", "True once the stream ended and every byte was read; never waits." },
        { "close", "()", "Closes it and drops what was unread." },
        { "creation_site", "(): string", '"file:line" of the call that opened it.' },
      },
    },
    {
      name = "provium.Console", bind = "mt:provium.console",
      doc = "A VM's serial console (vm:console()).",
      methods = {
        { "expect", "(pattern: string, timeout?: provium.Duration): string",
          "Waits (default 30s) until the Lua pattern matches output after this console object's previous match." },
        { "read_log", "(): string", "The whole console log so far." },
        { "read", "(opts?: provium.TailOptions): provium.Stream", "The console as a Stream." },
        { "write", "(data: string, opts?: provium.ConsoleWriteOptions)",
          "Types `data` into the guest's ttyS0, all of it." },
      },
    },
    {
      name = "provium.File", bind = "mt:provium.file",
      doc = "A guest file opened with vm:open_file, read and written at an offset.",
      methods = {
        { "read", "(n: integer): string?", "Up to `n` bytes (0 to 64 MiB) from the offset; nil at the end." },
        { "read_all", "(): string", "Everything from the offset to the end." },
        { "write", "(data: string): integer", "Writes all of `data` at the offset; returns its length." },
        { "seek", '(offset?: integer, whence?: "set"|"cur"|"end"): integer', "Moves the offset; returns the new one." },
        { "tell", "(): integer", "The offset." },
        { "tail_stream", "(opts?: provium.StreamOptions): provium.Stream", "A Stream of the file from the offset." },
        { "close", "()", "Closes the handle; again does nothing." },
      },
    },
    {
      name = "provium.Clock", bind = "mt:provium.clock",
      doc = "A guest's wall clock (vm:clock()), in seconds since 1970.",
      methods = {
        { "get", "(): number", "The guest's time." },
        { "set", "(t: number): number", "Sets it; returns the guest's time just after." },
        { "advance", "(d: provium.Duration): number", "Moves it by `d` (negative: back); returns the new time." },
        { "sleep", "(d: provium.Duration)", "Returns once `d` passed on the guest's monotonic clock." },
      },
    },
    {
      name = "provium.Batch", bind = "mt:provium.batch",
      doc = "The ops of one vm:batch: each takes the arguments of the vm: call and returns its index in the results.",
      methods = {
        { "run", "(cmd: provium.Cmd, opts?: provium.RunOptions): integer", "Queues vm:run (its result: a RunResult)." },
        { "read_file", "(path: string): integer", "Queues vm:read_file." },
        { "write_file", "(path: string, data: string, opts?: provium.WriteFileOptions): integer", "Queues vm:write_file." },
        { "stat", "(path: string): integer", "Queues vm:stat." },
        { "listdir", "(path: string): integer", "Queues vm:listdir." },
        { "mkdir", "(path: string, opts?: provium.MkdirOptions): integer", "Queues vm:mkdir." },
        { "unlink", "(path: string): integer", "Queues vm:unlink." },
        { "rename", "(from: string, to: string): integer", "Queues vm:rename." },
      },
    },
    {
      name = "provium.Call", bind = "mt:provium.syscall",
      doc = "A syscall running on a thread of the agent (vm:syscall_async).",
      methods = {
        { "await", "(timeout?: provium.Duration): provium.SyscallResult",
          "The result once the call returned; raises if `timeout` passes first (it can be awaited again)." },
        { "cancel", "()", "Interrupts a call that blocks (EINTR) and forgets it." },
      },
    },
    {
      name = "provium.Worker", bind = "mt:provium.worker",
      doc = "A second agent process in the guest (vm:spawn_worker); its guest calls run as its user, in its namespaces.",
      methods = {
        { "kill", "(sig?: provium.Signal)", "Signals the worker process (default TERM)." },
        { "join", '(timeout?: provium.Duration): integer, "exited"|"signalled"',
          "Ends the worker (killed after `timeout`, default 10s); its exit code or 128 + the signal, and how it ended." },
        { "close", "()", "Joins it (3 s), if it was not." },
        { "pid", "(): integer", "Its pid in the guest." },
        { "handle", "(): integer", "Its number (1 to 255)." },
        { "creation_site", "(): string", "The file:line that spawned it." },
        { "run", from = "provium.VM" },
        { "run_async", from = "provium.VM" },
        { "syscall", from = "provium.VM" },
        { "syscall_async", from = "provium.VM" },
        { "ioctl", from = "provium.VM" },
        { "read_mem", from = "provium.VM" },
        { "open_file", from = "provium.VM" },
        { "read_file", from = "provium.VM" },
        { "write_file", from = "provium.VM" },
        { "stat", from = "provium.VM" },
        { "listdir", from = "provium.VM" },
        { "mkdir", from = "provium.VM" },
        { "unlink", from = "provium.VM" },
        { "rename", from = "provium.VM" },
        { "tail_file", from = "provium.VM" },
        { "push_file", from = "provium.VM" },
        { "batch", from = "provium.VM" },
        { "clock", from = "provium.VM" },
      },
    },
    {
      name = "provium.Snapshot", bind = "mt:provium.snapshot",
      doc = "A VM's saved state (vm:snapshot()); lives until the file ends.",
      methods = {
        { "size", "(): integer", "Bytes on disk (compressed), with its disks' copies." },
        { "delete", "()", "Removes the file; a deleted snapshot cannot be restored." },
      },
    },
    {
      name = "provium.LabSnapshot", bind = "mt:provium.labsnap",
      doc = "The saved state of every running VM of the file and its bridges (provium:snapshot()).",
      methods = {
        { "size", "(): integer", "Bytes on disk of all its VMs' snapshots." },
        { "delete", "()", "Removes them." },
      },
    },

    -- ---- disks ---------------------------------------------------------------
    {
      name = "provium.Disk", bind = "mt:provium.disk",
      doc = "A disk of a VM (vm:disk(id)).",
      methods = {
        { "id", "(): string", "Its id (the guest's serial)." },
        { "size", "(): integer", "Its size in bytes as the guest sees it." },
        { "device", "(): string", "Its guest device, e.g. /dev/vda; raises before the VM booted." },
        { "path", "(): string?", "The host file QEMU opens; nil before the first boot." },
        { "detach", "()", "Unplugs a hot-plugged (or SCSI) disk; returns once the guest let it go." },
        { "stats", "(): provium.DiskStats", "What the guest did with the disk in this QEMU." },
        { "read_sectors", "(sector: integer, n: integer): string",
          "`n` 512-byte sectors from the host file; only while the VM is paused or not running." },
        { "write_sectors", "(sector: integer, data: string)", "Writes whole sectors there, under the same conditions." },
        { "fault", "(opts: provium.FaultOptions): provium.Fault", "Adds a fault rule; returns it." },
        { "faults", "(): provium.FaultInfo[]", "Every fault rule in force." },
        { "clear_faults", "()", "Drops every fault rule." },
        { "power_cut", "()",
          "Every mediated disk of the VM drops what its guest had not flushed, then QEMU is killed; the VM is created again." },
      },
    },
    {
      name = "provium.Fault", bind = "mt:provium.fault",
      doc = "A fault rule of a disk (disk:fault).",
      methods = {
        { "clear", "()", "Drops the rule." },
        { "hits", "(): integer", "How many requests it failed or delayed (0 once cleared)." },
        { "id", "(): integer", "Its number." },
      },
    },

    -- ---- networking ------------------------------------------------------------
    {
      name = "provium.Bridge", bind = "mt:provium.bridge",
      doc = "A virtual Ethernet segment the test controls frame by frame (provium:bridge).",
      methods = {
        { "attach", "(vms: provium.VM|provium.VM[], opts?: provium.AttachOptions)",
          "Before the VMs boot: each gets a NIC on this bridge. `ip` (one VM) overrides the address." },
        { "detach", "(vm: provium.VM)", "Before boot: as if never attached; on a running VM: unplugs the NIC." },
        { "members", "(): provium.VM[]", "The attached VMs, in attach order." },
        { "name", "(): string", "The bridge's name." },
        { "nic", "(vm: provium.Member): provium.Nic", "The VM's NIC on this bridge." },
        { "capture", "(path?: string): provium.Capture", "A pcap capture of every frame the switch receives." },
        { "partition", "(a: provium.Member, b: provium.Member)", "Cuts both directions between a and b.",
          overloads = { "(dir: provium.Direction)" } },
        { "unpartition", "(a: provium.Member, b: provium.Member)", "Heals what partition cut (the same arguments).",
          overloads = { "(dir: provium.Direction)" } },
        { "partition_all", "()", "Cuts every direction." },
        { "restore_all", "()", "Removes every cut and isolation." },
        { "is_partitioned", "(a: provium.Member, b: provium.Member): boolean", "True if either direction is cut.",
          overloads = { "(dir: provium.Direction): boolean" } },
        { "isolate", "(vm: provium.Member)", "The VM exchanges nothing on this bridge." },
        { "unisolate", "(vm: provium.Member)", "Ends the isolation; the cuts it had come back." },
        { "is_isolated", "(vm: provium.Member): boolean", "Whether the VM is isolated." },
        { "add_latency", "(ms: number)", "Delays each frame by `ms` in every direction (with a table: one direction, jitter).",
          overloads = { "(opts: provium.LatencyOptions)" } },
        { "drop_rate", "(pct: number)", "Loses `pct` % of frames.", overloads = { "(opts: provium.RateOptions)" } },
        { "bandwidth_limit", "(bps: number)", "Bits per second; frames wait their turn.",
          overloads = { "(opts: provium.BandwidthOptions)" } },
        { "duplicate_rate", "(pct: number)", "Sends a second copy of `pct` % of frames.",
          overloads = { "(opts: provium.RateOptions)" } },
        { "reorder", "(pct: number)", "Holds `pct` % of frames back 10 ms so later ones overtake them.",
          overloads = { "(opts: provium.RateOptions)" } },
        { "corrupt_rate", "(pct: number)", "Flips one random bit in `pct` % of frames.",
          overloads = { "(opts: provium.RateOptions)" } },
        { "reset", "()", "Removes every impairment." },
        { "latency_ms", "(dir?: provium.Direction): number", "The bridge-wide latency, or that direction's." },
        { "jitter_ms", "(dir?: provium.Direction): number", "The jitter." },
        { "drop_rate_pct", "(dir?: provium.Direction): number", "The drop rate." },
        { "bandwidth_bps", "(dir?: provium.Direction): integer", "The bandwidth limit (0: none)." },
        { "duplicate_rate_pct", "(dir?: provium.Direction): number", "The duplicate rate." },
        { "reorder_pct", "(dir?: provium.Direction): number", "The reorder rate." },
        { "corrupt_rate_pct", "(dir?: provium.Direction): number", "The corrupt rate." },
        { "counters", "(): provium.Counters", "The bridge's totals." },
        { "enable_uplink", "()", "NAT from the bridge's guests to the host's network (off by default)." },
        { "uplink_enabled", "(): boolean", "Whether the uplink is on." },
      },
    },
    {
      name = "provium.Nic", bind = "mt:provium.nic",
      doc = "A VM's NIC on a bridge (vm:nic, bridge:nic).",
      methods = {
        { "counters", "(): provium.Counters", "What the switch saw of it: tx sent by the guest, rx delivered to it, drops." },
        { "disconnect", "()", "Link down in the guest (QMP set_link)." },
        { "reconnect", "()", "Link up again." },
        { "capture", "(path?: string): provium.Capture", "A capture of the frames it sent and of those delivered to it." },
        { "name", "(): string", '"eth0", ...' },
        { "ip", "(): string", "Its address." },
        { "mac", "(): string", "Its MAC." },
      },
    },
    {
      name = "provium.Capture", bind = "mt:provium.capture",
      doc = "A pcap capture of a bridge or a NIC.",
      methods = {
        { "path", "(): string", "The pcap file." },
        { "stop", "(): integer", "Stops and flushes; returns the number of frames written." },
      },
    },

    -- ---- what calls return ------------------------------------------------------
    {
      name = "provium.Stat",
      doc = "vm:stat's answer (lstat).",
      fields = {
        { "type", '"file"|"dir"|"symlink"|"other"', "What it is." },
        { "size", "integer", "Its size in bytes." },
        { "mode", "integer", "Its permission bits." },
        { "mtime_ns", "integer", "Its modification time, ns since 1970." },
      },
    },
    {
      name = "provium.SyscallResult",
      doc = "A raw syscall's answer.",
      fields = {
        { "ret", "integer", "What the syscall returned." },
        { "result", "integer", "The same as ret (as in peios/provium)." },
        { "errno", "integer", "0 unless ret is -1." },
        { "out_bufs", "string[]", "The buffers after the call, in the order of bufs." },
      },
    },
    {
      name = "provium.IoctlResult",
      doc = "vm:ioctl's answer.",
      fields = {
        { "ret", "integer", "What ioctl returned." },
        { "result", "integer", "The same as ret." },
        { "errno", "integer", "0 unless ret is -1." },
        { "out_data", "string?", "The buffer after the call, when data was a string." },
      },
    },
    {
      name = "provium.DiskStats",
      doc = "disk:stats(): the guest's I/O on the disk in this QEMU.",
      fields = {
        { "reads", "integer", "" }, { "writes", "integer", "" }, { "flushes", "integer", "" },
        { "read_bytes", "integer", "" }, { "written_bytes", "integer", "" },
        { "failed_reads", "integer", "" }, { "failed_writes", "integer", "" }, { "failed_flushes", "integer", "" },
        { "faults", "integer", "Requests a fault rule failed or delayed." },
        { "unflushed_bytes", "integer", "What a power cut would drop now." },
      },
    },
    {
      name = "provium.FaultInfo",
      doc = "A fault rule in force (disk:faults()).",
      fields = {
        { "id", "integer", "" }, { "op", '"read"|"write"|"flush"|"any"', "" }, { "errno", "string?", "" },
        { "offset", "integer", "" }, { "length", "integer?", "" }, { "after", "integer", "" },
        { "probability", "number", "" }, { "delay", "number", "Seconds." }, { "once", "boolean", "" },
        { "hits", "integer", "" }, { "active", "boolean", "False once a `once` rule is spent." },
      },
    },
    {
      name = "provium.Counters",
      doc = "Frame counts of a bridge or NIC.",
      fields = {
        { "tx_packets", "integer", "" }, { "tx_bytes", "integer", "" }, { "rx_packets", "integer", "" },
        { "rx_bytes", "integer", "" }, { "drops", "integer", "" },
      },
    },

    -- ---- options tables -----------------------------------------------------------
    {
      name = "provium.Meta", options = true, open = true, what = { "meta" },
      doc = "A test's meta: the keys the runner reads; any other key is free metadata (but not one a letter away).",
      fields = {
        { "skip", "boolean|string", "The test is skipped with that reason." },
        { "slow", "boolean", "Skipped unless --include-slow." },
        { "tags", "string|string[]", "For --tag / --no-tag." },
        { "timeout", dur, "The test fails when it runs longer." },
      },
    },
    {
      name = "provium.Claim", options = true, what = { "provium:claim" },
      doc = "What the file needs from the pool.",
      fields = { { "memory", "provium.Size", "" }, { "cpus", "integer", "" } },
    },
    {
      name = "provium.WaitOptions", options = true, what = { "wait_until options" },
      doc = "wait_until's options.",
      fields = {
        { "timeout", dur, "Default 10s." },
        { "interval", dur, "Between calls; default 50ms." },
        { "desc", "string", "What is waited for, named in the failure." },
      },
    },
    {
      name = "provium.BootFields",
      doc = "The boot options of provium:vm and vm:boot (a key of vm:boot replaces provium:vm's).",
      fields = {
        { "cmdline", "string", "Replaces the profile's kernel command line (provium's own words stay first)." },
        { "cmdline_append", "string", "Added after the profile's (or cmdline's) words." },
        { "files", "provium.BootFile[]", "Files in the guest before its agent answers." },
        { "initial_time", "number|string", 'The guest clock at power-on: seconds since 1970 or "YYYY-MM-DD[THH:MM:SS]".' },
        { "agent_timeout", dur, "How long to wait for the agent's hello." },
        { "rng_seed", "integer|string", "The VM's seed (an integer up to 2^53, or decimal digits up to 2^64-1)." },
        { "boot", '"warm"|"cold"', 'warm (default): resume the profile\'s booted template, then get a fresh identity; cold: boot the kernel.' },
      },
    },
    {
      name = "provium.VMOptions", options = true, parent = "provium.BootFields", what = { "provium:vm options" },
      doc = "provium:vm's options.",
      fields = {
        { "memory", "provium.Size", "Default 256M." },
        { "cpus", "integer", "Default 1." },
        { "disks", "provium.DiskSpec[]", "At most 8 disks." },
        { "share", "provium.ShareSpec[]", "At most 4 host directories shared into the guest." },
      },
    },
    {
      name = "provium.BootOptions", options = true, parent = "provium.BootFields", what = { "vm:boot options" },
      doc = "vm:boot's options.",
      fields = { { "timeout", dur, "How long to wait for the agent's hello." } },
    },
    {
      name = "provium.LabBootOptions", options = true, what = { "provium:boot options" },
      doc = "provium:boot's options.",
      fields = { { "timeout", dur, "" } },
    },
    {
      name = "provium.BootFile", options = true,
      doc = "A file of the `files` boot option.",
      fields = {
        { "path", "string", "Absolute guest path." },
        { "content", "string", "Its bytes." },
        { "mode", "provium.Mode", "Default 0644." },
      },
    },
    {
      name = "provium.DiskSpec", options = true,
      doc = "A disk of `disks` (or vm:attach_disk): {id =, size =} or {id =, image =}.",
      fields = {
        { "id", "string", "1 to 20 letters, digits, -, _, .; the guest's serial." },
        { "size", "provium.Size", "A fresh disk of this size." },
        { "image", "string", "An existing raw or qcow2 image (never modified unless writable)." },
        { "readonly", "boolean", "The image itself, read-only." },
        { "writable", "boolean", "The image itself, read-write." },
        { "faults", "boolean", "false: a plain file (no faults, no power cuts)." },
        { "seed", "integer", "Seeds its probabilistic faults." },
        { "bus", '"virtio"|"scsi"', "Default virtio." },
      },
    },
    {
      name = "provium.ShareSpec", options = true,
      doc = "A host directory shared into the guest (virtio-fs).",
      fields = {
        { "host", "string", "An existing host directory (relative: to the calling Lua file)." },
        { "guest", "string", "Where the guest mounts it (absolute)." },
        { "readonly", "boolean", "A read-only mount." },
      },
    },
    {
      name = "provium.RunOptions", options = true, what = { "vm:run options", "vm:run_async options" },
      doc = "vm:run's and vm:run_async's options.",
      fields = {
        { "stdin", "string", "Bytes on the command's stdin." },
        { "env", "table<string, string>", "Environment variables to set." },
        { "env_clear", "boolean", "Start from an empty environment." },
        { "cwd", "string", "Working directory (entered as the new user)." },
        { "timeout", dur, "Kills the command's process group then." },
        { "uid", "integer", "Run as this uid." },
        { "gid", "integer", "Run with this gid." },
        { "groups", "integer[]", "Supplementary groups (at most 256)." },
      },
    },
    {
      name = "provium.WriteFileOptions", options = true, what = { "vm:write_file options" },
      doc = "vm:write_file's options.",
      fields = { { "append", "boolean", "" }, { "mode", "provium.Mode", "Default 0644." } },
    },
    {
      name = "provium.MkdirOptions", options = true, what = { "vm:mkdir options" },
      doc = "vm:mkdir's options.",
      fields = {
        { "parents", "boolean", "Make missing parents too; an existing directory is fine." },
        { "mode", "provium.Mode", "Default 0755." },
      },
    },
    {
      name = "provium.OpenFileOptions", options = true, what = { "vm:open_file options" },
      doc = "vm:open_file's flags (booleans; with neither read nor write, for reading) and mode.",
      fields = {
        { "read", "boolean", "" }, { "write", "boolean", "" },
        { "create", "boolean", "Make the file if it does not exist." },
        { "truncate", "boolean", "Empty it (implies write)." },
        { "append", "boolean", "Every write at the end (implies write)." },
        { "exclusive", "boolean", "Make it, fail if it exists." },
        { "mode", "provium.Mode", "Of a file the open makes (default 0644)." },
      },
    },
    {
      name = "provium.TailOptions", options = true, what = { "vm:tail_file options", "console:read options" },
      doc = "Where a followed file or console stream starts, and its buffer.",
      fields = {
        { "start", 'integer|"beginning"|"end"', 'An offset (negative: from the end), "beginning" (default) or "end".' },
        { "buffer", "provium.Size", "Unread bytes held at most (4K to 4G, default 16 MiB)." },
      },
    },
    {
      name = "provium.StreamOptions", options = true, what = { "stream options", "file:tail_stream options" },
      doc = "A stream's buffer.",
      fields = { { "buffer", "provium.Size", "Unread bytes held at most (4K to 4G, default 16 MiB)." } },
    },
    {
      name = "provium.ReadOptions", options = true,
      doc = "A stream read's options, instead of its timeout.",
      fields = {
        { "timeout", dur, "Default 30s." },
        { "plain", "boolean", "read_until and expect look for a plain substring, not a pattern." },
      },
    },
    {
      name = "provium.ConsoleWriteOptions", options = true, what = { "console:write options" },
      doc = "console:write's options.",
      fields = { { "timeout", dur, "Fails if the guest takes no byte for this long (default 10s)." } },
    },
    {
      name = "provium.PushFileOptions", options = true, what = { "vm:push_file options" },
      doc = "vm:push_file's options.",
      fields = { { "mode", "provium.Mode", "Default: the host file's permission bits." } },
    },
    {
      name = "provium.SyscallOptions", options = true,
      doc = "The table form of vm:syscall.",
      fields = {
        { "args", "integer[]", "Up to 6 integer arguments." },
        { "bufs", "(string|integer)[]", "Buffers: a string (its bytes) or a size (zero bytes)." },
        { "ptrs", "integer[]", "ptrs[i]: the 0-based argument that gets the address of bufs[i]." },
        { "timeout", dur, "A call still blocked then is interrupted (EINTR) and raises." },
      },
    },
    {
      name = "provium.IoctlOptions", options = true, what = { "vm:ioctl options" },
      doc = "vm:ioctl's options.",
      fields = { { "timeout", dur, "" } },
    },
    {
      name = "provium.WorkerOptions", options = true, what = { "vm:spawn_worker options" },
      doc = "vm:spawn_worker's options.",
      fields = {
        { "uid", "integer", "" }, { "gid", "integer", "" },
        { "groups", "integer[]", "" },
        { "caps", "string[]", 'Capability names as capabilities(7) spells them ("net_admin").' },
        { "unshare", '("net"|"mount"|"uts"|"ipc"|"pid"|"cgroup")[]', "Namespaces of its own." },
        { "cwd", "string", "Its working directory." },
      },
    },
    {
      name = "provium.FaultOptions", options = true,
      doc = "A disk fault rule.",
      fields = {
        { "op", '"read"|"write"|"flush"|"any"', "Default any." },
        { "errno", '"EIO"|"ENOSPC"|"EPERM"|"ENOMEM"|"EINVAL"|"ENOTSUP"', "Default EIO." },
        { "offset", "provium.Size", "Start of the byte range a request must overlap." },
        { "length", "provium.Size", "Length of that range (default: to the end)." },
        { "after", "integer", "The first N matching requests pass." },
        { "probability", "number", "0 to 1 (default 1), drawn from the disk's seed." },
        { "delay", dur, "The request waits this long first." },
        { "once", "boolean", "Spent after its first hit." },
      },
    },
    {
      name = "provium.VMFixtureOptions", options = true, what = { "provium.vm_fixture options" },
      doc = "provium.vm_fixture's options.",
      fields = { { "name", "string", "The VM's name (default: the builder's)." } },
    },
    {
      name = "provium.LabFixtureOptions", options = true, what = { "provium.lab_fixture options" },
      doc = "provium.lab_fixture takes no options.",
      fields = {},
    },
    {
      name = "provium.BridgeOptions", options = true, what = { "provium:bridge options" },
      doc = "provium:bridge's options.",
      fields = {
        { "seed", "integer", "Seeds the impairments (default: fixed per name)." },
        { "subnet", "string", 'e.g. "10.9.0.0/24" (prefix 8 to 26); default 10.77.n.0/24.' },
      },
    },
    {
      name = "provium.AttachOptions", options = true, what = { "bridge:attach options" },
      doc = "bridge:attach's options.",
      fields = { { "ip", "string", 'The address of the one VM attached, e.g. "10.9.0.5/24".' } },
    },
    {
      name = "provium.Direction", options = true,
      doc = "One direction on a bridge: frames from `from` to `to` (either alone: every direction from or to it).",
      fields = { { "from", "provium.Member", "" }, { "to", "provium.Member", "" } },
    },
    {
      name = "provium.LatencyOptions", options = true, parent = "provium.Direction",
      doc = "bridge:add_latency's table form.",
      fields = { { "ms", "number", "" }, { "jitter_ms", "number", "A uniform jitter." } },
    },
    {
      name = "provium.RateOptions", options = true, parent = "provium.Direction",
      doc = "The table form of drop_rate, duplicate_rate, reorder and corrupt_rate.",
      fields = { { "pct", "number", "0 to 100." }, { "p", "number", "pct as the original Provium spells it." } },
    },
    {
      name = "provium.BandwidthOptions", options = true, parent = "provium.Direction",
      doc = "bridge:bandwidth_limit's table form.",
      fields = { { "bps", "number", "Bits per second." } },
    },
  },
}
