/* cmd_console.c - provium console PROFILE (cmd.h): the profile's VM booted
 * in this process (no pool, no runner: one VM for a person at a terminal),
 * the terminal connected to its serial console, or with --print-command
 * the QEMU command line that boot would run (vm_command_line: vm_boot's own
 * builder), and no VM.
 *
 * The serial console is what vm_boot makes of it (vm.h): QEMU appends the
 * guest's output to console.log and reads its input from the FIFO
 * console.in. So the session reads the log from its first byte on (the boot
 * so far, then inotify for more) and writes what is typed into the FIFO; the
 * QEMU command stays exactly a run's. The guest gets provium.console=shell,
 * on which its agent starts a shell on ttyS0 (src/agent/bootfiles.c).
 *
 * On a terminal, stdin goes raw (restored on every way out: Ctrl-], the
 * guest powering off, SIGINT/SIGTERM/SIGHUP, an error); off one it is a pipe:
 * bytes in, bytes out, and end of input only stops the input. A 0x1d byte
 * (Ctrl-]) leaves either way. Leaving, or the guest powering off, shuts QEMU
 * down and exits 0; a signal exits 128+N. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <fcntl.h>

#include "cmd.h"
#include "dimage.h"
#include "units.h"
#include "vm.h"

#define LEAVE_KEY 0x1d /* Ctrl-] */
#define DEFAULT_MEMORY (256ull << 20) /* a VM's defaults, as provium:vm's */
#define DEFAULT_CPUS 1

/* What the spec points into. */
struct console_vm {
	char kernel[4096], initrd[4096]; /* vm_builtin_image's sizes */
	char rootfs[4200];
	char cmdline[4096];
	struct vm_spec spec;
};

static int unknown_profile(const struct pv_config *cfg, const char *name)
{
	char list[1024];
	size_t o = (size_t)snprintf(list, sizeof(list), "linux");
	for (size_t i = 0; i < cfg->nprofiles && o + 4 < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, ", %s", cfg->profiles[i].name);
	return cli_fail("console: unknown profile '%s' (profiles: %s)", name, list);
}

/* --mem and --cpus as the VM's, else the profile's, else provium:vm's defaults. */
static int sizes(const struct cli_opts *o, const struct pv_profile *p, struct vm_spec *s)
{
	struct pv_err err;
	s->memory_bytes = p && p->memory ? p->memory : DEFAULT_MEMORY;
	s->cpus = p && p->cpus ? p->cpus : DEFAULT_CPUS;
	if (o->mem && pv_parse_size(o->mem, &s->memory_bytes, &err) < 0)
		return cli_fail("--mem: %s", err.msg);
	if (o->mem && s->memory_bytes < (32ull << 20))
		return cli_fail("--mem: \"%s\" is too small: a VM needs at least 32M to boot", o->mem);
	if (o->cpus) {
		char *end;
		long v = strtol(o->cpus, &end, 10);
		if (*end || end == o->cpus || v < 1 || v > 64)
			return cli_fail("--cpus: \"%s\" is not a whole number from 1 to 64", o->cpus);
		s->cpus = (uint32_t)v;
	}
	return 0;
}

/* Appends word to cv->cmdline (space separated); false when it is full. */
static bool add_word(struct console_vm *cv, const char *word)
{
	size_t n = strlen(cv->cmdline);
	if (!word || !*word)
		return true;
	return (size_t)snprintf(cv->cmdline + n, sizeof(cv->cmdline) - n, "%s%s", n ? " " : "", word) <
	       sizeof(cv->cmdline) - n;
}

/* The profile's kernel, initrd and root as a run's VM of it gets them
 * (src/runner/lvm.c, load_profile and lvm_boot_many); 0 or CLI_EXIT_USAGE. */
static int images(const char *name, const struct pv_profile *p, struct console_vm *cv, bool *systemd)
{
	struct pv_err err;
	*systemd = false;
	if (!p || !p->kernel || (p->base && !p->initrd)) {
		char kernel[4096];
		if (vm_builtin_image(kernel, cv->initrd, &err) < 0)
			return cli_fail("console: %s", err.msg);
		if (!p || !p->kernel)
			snprintf(cv->kernel, sizeof(cv->kernel), "%s", kernel);
	}
	if (p && p->kernel)
		snprintf(cv->kernel, sizeof(cv->kernel), "%s", p->kernel);
	if (p && p->initrd) {
		if (!p->agent_included && !p->base)
			return cli_fail("console: profile '%s' has its own initrd, to which a run appends the agent; console "
					"boots only initrds that include it (agent = \"included\"); use provium repl %s", name,
					name);
		snprintf(cv->initrd, sizeof(cv->initrd), "%s", p->initrd);
	}
	if (p && p->base) {
		struct dimage d;
		if (!dimage_find(p, &d))
			return cli_fail("console: profile '%s''s Debian image is not built; run provium image build %s", name,
					name);
		snprintf(cv->rootfs, sizeof(cv->rootfs), "%s", d.root);
		cv->spec.rootfs = cv->rootfs;
		*systemd = p->init_systemd;
	}
	return 0;
}

static int resolve(const struct cmd_ctx *c, struct console_vm *cv)
{
	const struct cli_opts *o = c->o;
	const char *name = o->console_profile, *force = getenv("PROVIUM_ACCEL");
	const struct pv_profile *p = NULL;
	bool systemd;
	int rc;

	memset(cv, 0, sizeof(*cv));
	if (!strcmp(name, "host"))
		return cli_fail("console: profile 'host' boots on the host's root shared by virtiofsd, which console does "
				"not start; use provium repl host");
	if (strcmp(name, "linux") != 0 && !(p = pv_config_profile(c->cfg, name)))
		return unknown_profile(c->cfg, name);
	if ((rc = sizes(o, p, &cv->spec)) != 0 || (rc = images(name, p, cv, &systemd)) != 0)
		return rc;
	if (p && p->ndisks)
		fprintf(stderr, "provium console: profile '%s''s disks are not attached (console boots the guest alone)\n",
			name);
	/* the order of a run's: the profile's words, the user's, provium's */
	bool fits = add_word(cv, p ? p->cmdline : NULL) && add_word(cv, o->console_cmdline) &&
		    add_word(cv, getenv("PROVIUM_GUEST_CMDLINE"));
	if (cv->spec.rootfs)
		fits = fits && add_word(cv, "provium.rootfs=" VM_ROOTFS_SERIAL) &&
		       add_word(cv, systemd ? "provium.init=systemd" : NULL);
	/* under systemd the console is systemd's: no shell from the agent */
	fits = fits && add_word(cv, systemd ? NULL : "provium.console=shell");
	if (!fits)
		return cli_fail("console: the kernel command line is too long (--cmdline, the profile's cmdline and "
				"PROVIUM_GUEST_CMDLINE)");
	cv->spec.kernel = cv->kernel;
	cv->spec.initrd = cv->initrd;
	cv->spec.cmdline = cv->cmdline;
	if (p && p->accel >= 0) {
		cv->spec.kvm = p->accel == 1;
	} else if (!(force && !strcmp(force, "tcg"))) {
		char notice[600];
		cv->spec.kvm = vm_kvm_usable(cv->kernel, cv->initrd, notice, sizeof(notice));
		if (notice[0])
			fprintf(stderr, "provium: %s\n", notice);
	}
	cv->spec.boot_timeout_ns = cv->spec.kvm ? 30000000000ull : 180000000000ull;
	cv->spec.vmgenid = p && p->kernel ? p->vmgenid : vm_image_has_vmgenid(cv->kernel);
	return 0;
}

/* ---- the session ------------------------------------------------------------ */

struct session {
	struct vm *vm;
	int log_fd, ino_fd, sig_fd;
	bool raw, in_open;
	struct termios saved;
};

static void restore_terminal(struct session *s)
{
	if (s->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &s->saved);
	s->raw = false;
}

/* What the guest printed since the last call, to stdout; -errno. */
static int pump_log(struct session *s)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(s->log_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(STDOUT_FILENO, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			off += w;
		}
	}
}

/* Typed bytes into the guest; 1 when Ctrl-] was among them (what came
 * before it still goes in), 0, or -errno. */
static int pump_input(struct session *s)
{
	char buf[4096];
	struct pv_err err;
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		/* end of input (a pipe), or a terminal gone: no more input */
		s->in_open = false;
		return s->raw ? 1 : 0;
	}
	char *leave = memchr(buf, LEAVE_KEY, (size_t)n);
	size_t len = leave ? (size_t)(leave - buf) : (size_t)n;
	/* a guest that reads nothing for 10 s loses the keys, not the session */
	if (len && vm_console_write(s->vm, buf, len, 10000000000ull, 0, NULL, &err) == -ECHILD)
		return 0; /* the pidfd says so next */
	return leave ? 1 : 0;
}

/* The loop: 0 left (Ctrl-]), 1 the guest powered off, 128+N a signal, or
 * CLI_EXIT_USAGE (printed). */
static int proxy(struct session *s)
{
	/* what the guest printed before the watch began (all of its boot, as
	 * the session starts once the agent answered): inotify tells only of
	 * later writes, and a shell prompt waits for a key */
	int first = pump_log(s);
	if (first < 0) {
		restore_terminal(s);
		return cli_fail("console: writing the guest's output: %s", strerror(-first));
	}
	for (;;) {
		struct pollfd p[4] = {
			{ .fd = s->ino_fd, .events = POLLIN },
			{ .fd = s->vm->pidfd, .events = POLLIN },
			{ .fd = s->sig_fd, .events = POLLIN },
			{ .fd = s->in_open ? STDIN_FILENO : -1, .events = POLLIN },
		};
		int rc;
		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			return cli_fail("console: poll: %s", strerror(errno));
		}
		if (p[0].revents) {
			char ev[4096];
			while (read(s->ino_fd, ev, sizeof(ev)) > 0)
				;
		}
		if ((rc = pump_log(s)) < 0) {
			restore_terminal(s);
			return cli_fail("console: writing the guest's output: %s", strerror(-rc));
		}
		if (p[1].revents && vm_exited(s->vm))
			return 1;
		if (p[2].revents) {
			struct signalfd_siginfo si;
			if (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				return 128 + (int)si.ssi_signo;
		}
		if (p[3].revents && pump_input(s) == 1)
			return 0;
	}
}

/* The signals that end the session, as a signalfd (blocked from here on). */
static int session_signals(void)
{
	sigset_t mask;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int session(const char *profile, struct vm *vm)
{
	struct session s = { .vm = vm, .log_fd = -1, .ino_fd = -1, .sig_fd = -1, .in_open = true };
	int rc;

	s.sig_fd = session_signals();
	s.log_fd = open(vm->console_path, O_RDONLY | O_CLOEXEC);
	s.ino_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (s.sig_fd < 0 || s.log_fd < 0 || s.ino_fd < 0 || inotify_add_watch(s.ino_fd, vm->console_path, IN_MODIFY) < 0) {
		rc = cli_fail("console: cannot follow %s: %s", vm->console_path, strerror(errno));
		goto out;
	}
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &s.saved) == 0) {
		struct termios raw = s.saved;
		cfmakeraw(&raw);
		s.raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
	rc = proxy(&s);
	pump_log(&s);
	restore_terminal(&s);
	if (rc == 1)
		fprintf(stderr, "\nprovium console: the guest powered off\n");
	else if (rc == 0)
		fprintf(stderr, "\nprovium console: left; shutting %s down\n", profile);
	else if (rc > 128)
		fprintf(stderr, "\nprovium console: interrupted by SIG%s; shutting %s down\n", sigabbrev_np(rc - 128) ?: "?",
			profile);
	rc = rc == 1 ? 0 : rc;
out:
	restore_terminal(&s);
	if (s.log_fd >= 0)
		close(s.log_fd);
	if (s.ino_fd >= 0)
		close(s.ino_fd);
	if (s.sig_fd >= 0)
		close(s.sig_fd);
	return rc;
}

int cmd_console(const struct cmd_ctx *c)
{
	struct console_vm *cv = calloc(1, sizeof(*cv));
	struct pv_err err;
	struct vm vm;
	int rc;

	if (!cv)
		return cli_fail("out of memory");
	if ((rc = resolve(c, cv)) != 0)
		goto out;
	if (c->o->print_command) {
		char dir[300];
		snprintf(dir, sizeof(dir), "%s/vm-XXXXXX", vm_scratch_base());
		char *line = vm_command_line(&cv->spec, dir, &err);
		if (!line) {
			rc = cli_fail("console: %s", err.msg);
			goto out;
		}
		printf("%s\n", line);
		free(line);
		rc = fflush(stdout) == 0 ? 0 : cli_fail("console: cannot write the command: %s", strerror(errno));
		goto out;
	}
	fprintf(stderr, "provium console: Ctrl-] leaves; the VM shuts down then\n"
			"provium console: booting %s (%s)...\n",
		c->o->console_profile, cv->spec.kvm ? "KVM" : "TCG: this takes a while");
	/* a ^C while it boots ends provium, and QEMU with it (PR_SET_PDEATHSIG) */
	vm_set_own_process_group(true);
	if (vm_boot(&vm, &cv->spec, &err) < 0) {
		rc = cli_fail("console: %s", err.msg);
		goto out;
	}
	rc = session(c->o->console_profile, &vm);
	vm_shutdown(&vm);
	vm_remove_dir(&vm);
out:
	free(cv);
	return rc;
}
