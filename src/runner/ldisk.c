/* ldisk.c - disks (contract in ldisk.h). */
#include "ldisk.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "lhostfile.h"
#include "lvm.h"
#include "mpr.h"
#include "opts.h"
#include "qmp.h"
#include "runner_priv.h"
#include "sys.h"

#define SECTOR 512u
/* read_sectors / write_sectors move at most this much at once */
#define SECTOR_IO_MAX (64u << 20)

/* ---- the option ----------------------------------------------------------------------- */

/* "raw" or "qcow2" by the file's first bytes, and its virtual size. */
static int probe_image(const char *path, char *format, uint64_t *size, char *why, size_t whylen)
{
	uint8_t h[32];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ssize_t n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (n == (ssize_t)sizeof(h) && !memcmp(h, "QFI\xfb", 4)) {
		strcpy(format, "qcow2");
		*size = 0;
		for (int i = 24; i < 32; i++)
			*size = *size << 8 | h[i];
		return 0;
	}
	strcpy(format, "raw");
	*size = (uint64_t)st.st_size;
	if (*size % SECTOR) {
		snprintf(why, whylen, "a raw image of %llu bytes, not a whole number of 512-byte sectors",
			 (unsigned long long)*size);
		return -1;
	}
	return 0;
}

static void parse_one(lua_State *L, int t, const char *name, unsigned k, struct ldisks *out)
{
	static const char *const keys[] = { "id", "size", "image", "readonly", "writable", "faults", "seed", "bus", NULL };
	struct ldisk *d = &out->d[k];
	char what[160], why[300];
	snprintf(what, sizeof(what), "VM '%s' disks[%u]", name, k + 1);
	if (!lua_istable(L, t))
		luaL_error(L, "%s must be a table {id =, size =} or {id =, image =}, got %s", what, luaL_typename(L, t));
	opts_check(L, t, what, keys);
	if (lua_getfield(L, t, "id") != LUA_TSTRING)
		luaL_error(L, "%s needs an id (a string: the disk's name, e.g. \"data\")", what);
	size_t il;
	const char *id = lua_tolstring(L, -1, &il);
	if (!il || il > 20)
		luaL_error(L, "%s: id \"%s\" must be 1 to 20 characters (it is the disk's virtio serial)", what, id);
	for (size_t i = 0; i < il; i++)
		if (!(id[i] == '-' || id[i] == '_' || id[i] == '.' || (id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z')))
			luaL_error(L, "%s: id \"%s\" may hold letters, digits, '-', '_' and '.' only", what, id);
	for (unsigned j = 0; j < k; j++)
		if (!out->d[j].detached && !strcmp(out->d[j].id, id))
			luaL_error(L, "%s: id \"%s\" is taken by disks[%d]", what, id, (int)j + 1);
	memcpy(d->id, id, il + 1);
	d->port = -1;
	d->srv.ctl = -1; /* no server yet */
	d->srv.pid = 0;
	lua_pop(L, 1);
	bool has_size = lua_getfield(L, t, "size") != LUA_TNIL;
	bool has_image = lua_getfield(L, t, "image") != LUA_TNIL;
	if (has_size == has_image)
		luaL_error(L, "%s (\"%s\"): give either size (a fresh disk) or image (an existing one)", what, d->id);
	for (int i = 0; i < 2; i++) {
		const char *key = i ? "writable" : "readonly";
		if (lua_getfield(L, t, key) != LUA_TNIL && !lua_isboolean(L, -1))
			luaL_error(L, "%s (\"%s\"): %s must be a boolean", what, d->id, key);
		(i ? &d->writable : &d->readonly)[0] = lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	if (d->readonly && d->writable)
		luaL_error(L, "%s (\"%s\"): readonly and writable together", what, d->id);
	if (has_size) {
		d->size = opts_size(L, -2, what);
		if (d->size < SECTOR || d->size % SECTOR)
			luaL_error(L, "%s (\"%s\"): size must be a whole number of 512-byte sectors, at least one", what,
				   d->id);
		if (d->readonly || d->writable)
			luaL_error(L, "%s (\"%s\"): readonly and writable are for an image", what, d->id);
		strcpy(d->format, "raw");
	} else {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "%s (\"%s\"): image must be a host path, got %s", what, d->id, luaL_typename(L, -1));
		lhostfile_path(L, lua_tostring(L, -1), what, d->image, sizeof(d->image));
		{
			/* absolute: the overlay's backing file is named by it */
			char abs[PATH_MAX];
			if (realpath(d->image, abs) && strlen(abs) < sizeof(d->image))
				strcpy(d->image, abs);
		}
		if (probe_image(d->image, d->image_format, &d->size, why, sizeof(why)) < 0)
			luaL_error(L, "%s (\"%s\"): image %s: %s", what, d->id, d->image, why);
		/* the image itself, or a copy-on-write overlay of it */
		strcpy(d->format, d->readonly || d->writable ? d->image_format : "qcow2");
	}
	lua_pop(L, 2);
	/* mediated: what the disk server can serve, unless declined */
	bool can = !strcmp(d->format, "raw") && !d->readonly;
	int t_faults = lua_getfield(L, t, "faults");
	if (t_faults != LUA_TNIL && t_faults != LUA_TBOOLEAN)
		luaL_error(L, "%s (\"%s\"): faults must be a boolean", what, d->id);
	d->mediated = t_faults == LUA_TNIL ? can : lua_toboolean(L, -1);
	if (d->mediated && !can)
		luaL_error(L, "%s (\"%s\"): faults = true needs a disk QEMU writes as raw: a fresh one (size =) or a raw "
			      "image with writable = true (this one is %s)", what, d->id,
			   d->readonly ? "readonly" : "a qcow2 overlay of its image");
	if (lua_getfield(L, t, "bus") != LUA_TNIL) {
		const char *b = lua_tostring(L, -1);
		if (!b || (strcmp(b, "virtio") && strcmp(b, "scsi")))
			luaL_error(L, "%s (\"%s\"): bus must be \"virtio\" (virtio-blk, /dev/vdX; the default) or \"scsi\" "
				      "(a SCSI disk on virtio-scsi, /dev/sdX)", what, d->id);
		d->scsi = !strcmp(b, "scsi");
	}
	lua_pop(L, 1);
	if (lua_getfield(L, t, "seed") != LUA_TNIL) {
		if (!lua_isinteger(L, -1))
			luaL_error(L, "%s (\"%s\"): seed must be an integer", what, d->id);
		d->seed = (uint64_t)lua_tointeger(L, -1);
	} else {
		/* the same disk of the same file draws the same faults each run */
		uint64_t h = 1469598103934665603ull;
		const char *parts[3] = { runner_env()->path, name, d->id };
		for (int i = 0; i < 3; i++)
			for (const char *c = parts[i] ? parts[i] : ""; ; c++) {
				h = (h ^ (uint8_t)*c) * 1099511628211ull;
				if (!*c)
					break;
			}
		d->seed = h;
	}
	lua_pop(L, 2);
}

void ldisk_push_profile(lua_State *L, const struct pv_profile *p)
{
	lua_createtable(L, (int)p->ndisks, 0);
	for (size_t k = 0; k < p->ndisks; k++) {
		const struct pv_profile_disk *pd = &p->disks[k];
		static const char *const flags[] = { "readonly", "writable", "faults" };
		const int vals[] = { pd->readonly, pd->writable, pd->faults };
		lua_createtable(L, 0, 7);
		lua_pushstring(L, pd->id);
		lua_setfield(L, -2, "id");
		if (pd->size) {
			lua_pushinteger(L, (lua_Integer)pd->size);
			lua_setfield(L, -2, "size");
		}
		if (pd->image) {
			lua_pushstring(L, pd->image);
			lua_setfield(L, -2, "image");
		}
		for (int i = 0; i < 3; i++)
			if (vals[i] >= 0) {
				lua_pushboolean(L, vals[i]);
				lua_setfield(L, -2, flags[i]);
			}
		if (pd->has_seed) {
			lua_pushinteger(L, (lua_Integer)pd->seed);
			lua_setfield(L, -2, "seed");
		}
		if (pd->bus) {
			lua_pushstring(L, pd->bus);
			lua_setfield(L, -2, "bus");
		}
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
}

void ldisk_parse(lua_State *L, int idx, const char *name, struct ldisks *out)
{
	memset(out, 0, sizeof(*out));
	if (lua_isnoneornil(L, idx))
		return;
	out->hotplug = true;
	if (!lua_istable(L, idx))
		luaL_error(L, "VM '%s' disks must be a list of disks, got %s", name, luaL_typename(L, idx));
	lua_Integer n = luaL_len(L, idx);
	if (n > VM_MAX_DISKS)
		luaL_error(L, "VM '%s' has %d disks; at most %d", name, (int)n, VM_MAX_DISKS);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, idx, i);
		parse_one(L, lua_gettop(L), name, (unsigned)(i - 1), out);
		lua_pop(L, 1);
	}
	out->n = (unsigned)n;
}

/* ---- making the files -------------------------------------------------------------------- */

static int overlay(struct ldisk *d, struct pv_err *err)
{
	char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", d->image_format, "-b", d->image, d->path,
			 NULL };
	int st;
	pid_t pid = fork();
	if (pid < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0)
			dup2(null, 0);
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return pv_err_set(err, -errno, SIZE_MAX, "waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return pv_err_set(err, -EIO, SIZE_MAX, "disk \"%s\": qemu-img create of an overlay of %s failed (%s); is "
				  "qemu-utils installed? (scripts/setup installs it)", d->id, d->image,
				  WIFEXITED(st) && WEXITSTATUS(st) == 127 ? "qemu-img not found" : "see above");
	return 0;
}

int ldisk_new_path(const struct ldisk *d, const char *ext, char *out, size_t len, struct pv_err *err)
{
	static unsigned counter;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/disks", runner_env()->scratch);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return pv_err_set(err, -errno, SIZE_MAX, "disk \"%s\": mkdir %s: %s", d->id, dir, strerror(errno));
	snprintf(out, len, "%s/%d-%u-%s.%s", dir, (int)getpid(), counter++, d->id, ext);
	return 0;
}

/* Makes d's file, the first time. */
static int make_file(struct ldisk *d, struct pv_err *err)
{
	if (d->path[0])
		return 0;
	/* the image itself, or a file of ours (through a local buffer: gcc -O0
	 * takes fields of one struct for overlapping) */
	bool direct = d->image[0] && (d->readonly || d->writable);
	char path[sizeof(d->path)];
	if (direct)
		snprintf(path, sizeof(path), "%s", d->image);
	else if (ldisk_new_path(d, d->format, path, sizeof(path), err) < 0)
		return -EIO;
	memcpy(d->path, path, sizeof(path));
	if (direct)
		return 0;
	if (d->image[0]) {
		int rc = overlay(d, err);
		if (rc < 0)
			d->path[0] = 0;
		return rc;
	}
	int fd = open(d->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)d->size) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		unlink(d->path);
		d->path[0] = 0;
		return pv_err_set(err, -e, SIZE_MAX, "disk \"%s\": cannot make its %llu-byte file %s: %s", d->id,
				  (unsigned long long)d->size, path, strerror(e));
	}
	close(fd);
	return 0;
}

void ldisk_fault_line(const struct ldisk_fault *f, char *out, size_t len)
{
	snprintf(out, len, "F %u %u %d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu32 " %" PRIu64 " %d", f->id, f->ops,
		 f->err, f->off, f->len, f->after, f->prob_ppm, f->delay_ns, f->once);
}

int ldisk_ready(struct ldisk *d, struct pv_err *err)
{
	char dir[4096];
	int rc = make_file(d, err);
	if (rc < 0 || !d->mediated || d->srv.pid)
		return rc;
	snprintf(dir, sizeof(dir), "%s/disks", runner_env()->scratch);
	rc = dserver_start(&d->srv, d->path, dir, d->seed, err);
	/* a server started again (a restore) gets the rules in force */
	for (unsigned i = 0; rc == 0 && i < d->nfaults; i++) {
		char line[256];
		ldisk_fault_line(&d->faults[i], line, sizeof(line));
		rc = dserver_cmd(&d->srv, line, NULL, 0, err);
	}
	if (rc < 0)
		pv_err_prefix(err, "disk \"%s\": ", d->id);
	return rc;
}

void ldisk_close(struct lvm *v)
{
	for (unsigned k = 0; k < v->disks.n; k++)
		dserver_stop(&v->disks.d[k].srv);
}

static struct vm_disk vm_disk_of(struct ldisk *d, unsigned k)
{
	return (struct vm_disk){ d->path, d->format, d->mediated ? d->srv.sock : NULL, d->id, d->readonly, k, d->scsi };
}

int ldisk_prepare(struct lvm *v, struct vm_disk *out, struct pv_err *err)
{
	int n = 0;
	for (unsigned k = 0; k < v->disks.n; k++) {
		struct ldisk *d = &v->disks.d[k];
		if (d->detached)
			continue;
		int rc = ldisk_ready(d, err);
		if (rc < 0)
			return rc;
		d->port = -1; /* a new QEMU: plugged at boot */
		out[n++] = vm_disk_of(d, k);
	}
	return n;
}

/* ---- after a boot ------------------------------------------------------------------------------ */

/* Looks each disk's device up by serial; returns how many of the present
 * ones were found. */
static unsigned find_devices(lua_State *L, struct lvm *v)
{
	struct mpr r;
	struct mpr_item it, e;
	char names[VM_MAX_DISKS * 4][16];
	unsigned nn = 0, found = 0;

	for (unsigned k = 0; k < v->disks.n; k++)
		v->disks.d[k].device[0] = 0;
	msgpack_packer *pk = agent_begin(&v->vm.agent, "listdir", 1);
	msgpack_pack_str_with_body(pk, "path", 4);
	msgpack_pack_str_with_body(pk, "/sys/block", 10);
	lvm_call(L, v, "finding its disks", 0);
	if (ctl_find(&v->vm.agent.resp, "entries", &r) && mpr_next(&r, &it, NULL) == 0 && it.type == MPR_ARRAY)
		for (uint32_t i = 0; i < it.v.count; i++)
			if (mpr_next(&r, &e, NULL) == 0 && e.type == MPR_STR && e.v.raw.len < 16 && e.v.raw.len > 2 &&
			    (!memcmp(e.v.raw.ptr, "vd", 2) || !memcmp(e.v.raw.ptr, "sd", 2)) &&
			    nn < sizeof(names) / sizeof(names[0])) {
				memcpy(names[nn], e.v.raw.ptr, e.v.raw.len);
				names[nn++][e.v.raw.len] = 0;
			}
	for (unsigned i = 0; i < nn; i++) {
		char path[64];
		const uint8_t *p;
		uint32_t len;
		struct pv_err err;
		int eno = 0;
		/* a SCSI disk's serial is its VPD page 0x80: 4 bytes of header, then it */
		bool sd = names[i][0] == 's';
		snprintf(path, sizeof(path), sd ? "/sys/block/%.15s/device/vpd_pg80" : "/sys/block/%.15s/serial", names[i]);
		pk = agent_begin(&v->vm.agent, "read_file", 1);
		msgpack_pack_str_with_body(pk, "path", 4);
		msgpack_pack_str_with_body(pk, path, strlen(path));
		int rc = agent_call(&v->vm.agent, pv_mono_ns() + lvm_op_timeout(), &eno, &err);
		if (rc == -EREMOTEIO)
			continue; /* a disk without a serial is none of ours */
		if (rc < 0)
			lvm_died(L, v, "finding its disks", err.msg);
		if (!ctl_get_raw(&v->vm.agent.resp, "data", &p, &len))
			continue;
		if (sd) {
			if (len < 4)
				continue;
			p += 4;
			len -= 4;
		}
		while (len && (p[len - 1] == '\n' || p[len - 1] == ' ' || p[len - 1] == 0))
			len--;
		for (unsigned k = 0; k < v->disks.n; k++) {
			struct ldisk *d = &v->disks.d[k];
			if (!d->detached && strlen(d->id) == len && !memcmp(d->id, p, len)) {
				snprintf(d->device, sizeof(d->device), "/dev/%.15s", names[i]);
				found++;
			}
		}
	}
	return found;
}

void ldisk_resolve(lua_State *L, struct lvm *v)
{
	unsigned present = 0;
	for (unsigned k = 0; k < v->disks.n; k++)
		present += !v->disks.d[k].detached;
	if (!present || find_devices(L, v) == present)
		return;
	for (unsigned k = 0; k < v->disks.n; k++)
		if (!v->disks.d[k].device[0] && !v->disks.d[k].detached)
			luaL_error(L, "VM '%s': disk \"%s\" is not in the guest (no /sys/block/%s says so): does its kernel "
				      "have %s?", v->name, v->disks.d[k].id,
				   v->disks.d[k].scsi ? "sd*/device/vpd_pg80" : "vd*/serial",
				   v->disks.d[k].scsi ? "virtio_scsi and sd_mod" : "virtio_blk");
}

/* ---- the Disk ------------------------------------------------------------------------------------ */

struct ldisk_ud {
	struct lvm *v; /* kept alive by uservalue 1 */
	unsigned k;
};

struct ldisk *ldisk_check(lua_State *L, int idx, struct lvm **vp)
{
	struct ldisk_ud *u = luaL_checkudata(L, idx, "provium.disk");
	if (vp)
		*vp = u->v;
	return &u->v->disks.d[u->k];
}

static int push_disk(lua_State *L, int vm_idx, struct lvm *v, unsigned k);

static int l_vm_disk(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *id = luaL_checkstring(L, 2);
	int found = -1;
	for (unsigned k = 0; k < v->disks.n; k++)
		if (!strcmp(v->disks.d[k].id, id) && (found < 0 || !v->disks.d[k].detached))
			found = (int)k; /* the one in the VM now, else the last detached */
	if (found >= 0)
		return push_disk(L, 1, v, (unsigned)found);
	return luaL_error(L, "VM '%s' has no disk \"%s\" (give it in provium:vm's disks option)", v->name, id);
}

static int d_id(lua_State *L)
{
	lua_pushstring(L, ldisk_check(L, 1, NULL)->id);
	return 1;
}

static int d_size(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)ldisk_check(L, 1, NULL)->size);
	return 1;
}

static int d_device(lua_State *L)
{
	struct lvm *v;
	struct ldisk *d = ldisk_check(L, 1, &v);
	if (d->detached)
		return luaL_error(L, "disk \"%s\" of VM '%s' was detached: it has no device", d->id, v->name);
	if (!d->device[0])
		return luaL_error(L, "disk \"%s\" of VM '%s' has no device yet: the VM has not booted", d->id, v->name);
	lua_pushstring(L, d->device);
	return 1;
}

static int d_path(lua_State *L)
{
	struct ldisk *d = ldisk_check(L, 1, NULL);
	if (!d->path[0])
		return lua_pushnil(L), 1;
	lua_pushstring(L, d->path);
	return 1;
}

/* The raw file of disk d for host-side sector I/O, opened for the op; raises
 * unless the VM's QEMU is stopped or paused. */
static int sector_fd(lua_State *L, struct lvm *v, struct ldisk *d, const char *what, bool write)
{
	if (v->state == LVM_RUNNING && !v->paused && !d->detached)
		return luaL_error(L, "disk:%s of \"%s\": VM '%s' is running, and the guest's own writes would race "
				     "yours; vm:pause() or vm:shutdown() it first", what, d->id, v->name);
	if (!d->path[0])
		return luaL_error(L, "disk:%s of \"%s\": VM '%s' never booted, so the disk has no data yet", what, d->id,
				  v->name);
	if (strcmp(d->format, "raw"))
		return luaL_error(L, "disk:%s of \"%s\": its file is a qcow2 (an overlay of %s); sector access works on "
				     "raw disks", what, d->id, d->image[0] ? d->image : "an image");
	if (write && d->readonly)
		return luaL_error(L, "disk:%s of \"%s\": the disk is readonly", what, d->id);
	int fd = open(d->path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return luaL_error(L, "disk:%s of \"%s\": %s: %s", what, d->id, d->path, strerror(errno));
	return fd;
}

static void check_range(lua_State *L, struct ldisk *d, const char *what, lua_Integer off, uint64_t bytes)
{
	if (off < 0 || (uint64_t)off > d->size / SECTOR || bytes > d->size - (uint64_t)off * SECTOR)
		luaL_error(L, "disk:%s of \"%s\": sectors %I+%I are past its end (%I sectors of 512 bytes)", what, d->id,
			   (lua_Integer)off, (lua_Integer)(bytes / SECTOR), (lua_Integer)(d->size / SECTOR));
	if (bytes > SECTOR_IO_MAX)
		luaL_error(L, "disk:%s: at most %d MiB at once", what, (int)(SECTOR_IO_MAX >> 20));
}

static int d_read_sectors(lua_State *L)
{
	struct lvm *v;
	struct ldisk *d = ldisk_check(L, 1, &v);
	lua_Integer off = luaL_checkinteger(L, 2), n = luaL_checkinteger(L, 3);
	if (n < 0)
		return luaL_error(L, "disk:read_sectors: a negative count");
	check_range(L, d, "read_sectors", off, (uint64_t)n * SECTOR);
	int fd = sector_fd(L, v, d, "read_sectors", false);
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, (size_t)n * SECTOR);
	ssize_t got = pread(fd, p, (size_t)n * SECTOR, (off_t)off * SECTOR);
	int e = errno;
	close(fd);
	if (got < 0)
		return luaL_error(L, "disk:read_sectors of \"%s\": %s", d->id, strerror(e));
	/* a sparse file shorter than the disk reads as zeros past its end */
	memset(p + got, 0, (size_t)n * SECTOR - (size_t)got);
	luaL_pushresultsize(&b, (size_t)n * SECTOR);
	return 1;
}

static int d_write_sectors(lua_State *L)
{
	struct lvm *v;
	struct ldisk *d = ldisk_check(L, 1, &v);
	lua_Integer off = luaL_checkinteger(L, 2);
	size_t len;
	const char *data = luaL_checklstring(L, 3, &len);
	if (len % SECTOR)
		return luaL_error(L, "disk:write_sectors: %I bytes is not a whole number of 512-byte sectors", (lua_Integer)len);
	check_range(L, d, "write_sectors", off, len);
	int fd = sector_fd(L, v, d, "write_sectors", true);
	int rc = 0;
	for (size_t done = 0; done < len && rc == 0;) {
		ssize_t w = pwrite(fd, data + done, len - done, (off_t)off * SECTOR + (off_t)done);
		if (w < 0 && errno != EINTR)
			rc = -errno;
		else if (w > 0)
			done += (size_t)w;
	}
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc < 0)
		return luaL_error(L, "disk:write_sectors of \"%s\": %s", d->id, strerror(-rc));
	return 0;
}

/* disk:stats(): the guest's I/O on the disk so far, as QEMU counted it
 * (QMP query-blockstats of its node "disk<k>"), this QEMU's life. */
static int d_stats(lua_State *L)
{
	struct lvm *v;
	struct ldisk *d = ldisk_check(L, 1, &v);
	struct ldisk_ud *u = lua_touserdata(L, 1);
	json_t *ret = NULL, *e;
	struct pv_err err;
	size_t i;
	char node[16];
	if (v->state != LVM_RUNNING || d->detached)
		return luaL_error(L, "disk:stats of \"%s\": %sVM '%s' is %s; its counts live in its QEMU", d->id,
				  d->detached ? "it was detached, and " : "", v->name, lvm_state_names[v->state]);
	if (qmp_exec(&v->vm.qmp, "query-blockstats", NULL, &ret, pv_mono_ns() + lvm_op_timeout(), &err) < 0)
		return luaL_error(L, "disk:stats of \"%s\": %s", d->id, err.msg);
	snprintf(node, sizeof(node), "disk%u", u->k);
	json_array_foreach(ret, i, e) {
		json_t *st = json_object_get(e, "stats");
		if (!st || !json_is_string(json_object_get(e, "node-name")) ||
		    strcmp(json_string_value(json_object_get(e, "node-name")), node))
			continue;
		static const char *const fields[][2] = {
			{ "reads", "rd_operations" }, { "writes", "wr_operations" }, { "flushes", "flush_operations" },
			{ "read_bytes", "rd_bytes" }, { "written_bytes", "wr_bytes" },
			{ "failed_reads", "failed_rd_operations" }, { "failed_writes", "failed_wr_operations" },
			{ "failed_flushes", "failed_flush_operations" },
		};
		lua_createtable(L, 0, 9);
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			lua_pushinteger(L, (lua_Integer)json_integer_value(json_object_get(st, fields[f][1])));
			lua_setfield(L, -2, fields[f][0]);
		}
		json_decref(ret);
		/* what only the disk server knows */
		uint64_t srv[5] = { 0 };
		char reply[256];
		if (d->mediated) {
			if (dserver_cmd(&d->srv, "S", reply, sizeof(reply), &err) < 0)
				return luaL_error(L, "disk:stats of \"%s\": %s", d->id, err.msg);
			sscanf(reply, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &srv[0], &srv[1], &srv[2],
			       &srv[3], &srv[4]);
		}
		lua_pushinteger(L, (lua_Integer)srv[3]);
		lua_setfield(L, -2, "faults");
		lua_pushinteger(L, (lua_Integer)srv[4]);
		lua_setfield(L, -2, "unflushed_bytes");
		return 1;
	}
	json_decref(ret);
	return luaL_error(L, "disk:stats of \"%s\": QEMU has no block node %s", d->id, node);
}

/* How long a hot-plugged disk may take to show up in the guest. */
#define HOTPLUG_TIMEOUT_NS (30000000000ull)

static int push_disk(lua_State *L, int vm_idx, struct lvm *v, unsigned k)
{
	struct ldisk_ud *u = lua_newuserdatauv(L, sizeof(*u), 1);
	u->v = v;
	u->k = k;
	luaL_setmetatable(L, "provium.disk");
	lua_pushvalue(L, vm_idx);
	lua_setiuservalue(L, -2, 1);
	return 1;
}

/* vm:attach_disk{id =, size = | image =, readonly =, writable =} */
static int l_attach_disk(lua_State *L)
{
	struct lvm *v = lvm_running(L, 1, "attach_disk");
	struct pv_err err;
	bool used[VM_MAX_HOTPLUG] = { false };
	int port = -1;
	if (!v->disks.hotplug)
		return luaL_error(L, "vm:attach_disk: VM '%s' has no ports to plug a disk into: give provium:vm a disks "
				     "list (an empty one is enough) to plug disks in later", v->name);
	if (v->disks.n >= VM_MAX_DISKS)
		return luaL_error(L, "vm:attach_disk: VM '%s' has had %d disks, the most", v->name, VM_MAX_DISKS);
	unsigned k = v->disks.n;
	parse_one(L, 2, v->name, k, &v->disks);
	struct ldisk *d = &v->disks.d[k];
	/* a virtio-blk disk takes a PCIe root port; a SCSI disk a target of the SCSI bus */
	for (unsigned j = 0; j < v->disks.n; j++)
		if (v->disks.d[j].port >= 0)
			used[v->disks.d[j].port] = true;
	for (int p = 0; p < VM_MAX_HOTPLUG && port < 0 && !d->scsi; p++)
		if (!used[p])
			port = p;
	if (port < 0 && !d->scsi)
		return luaL_error(L, "vm:attach_disk: VM '%s' has %d hot-plugged virtio disks, the most at once (detach one, "
				     "or plug a bus = \"scsi\" one)", v->name, VM_MAX_HOTPLUG);
	if (ldisk_ready(d, &err) < 0)
		return luaL_error(L, "vm:attach_disk: %s", err.msg);
	struct vm_disk vd = vm_disk_of(d, k);
	uint64_t deadline = pv_mono_ns() + HOTPLUG_TIMEOUT_NS;
	if (vm_hotplug_disk(&v->vm, k, port < 0 ? 0 : (unsigned)port, &vd, deadline, &err) < 0)
		return luaL_error(L, "vm:attach_disk \"%s\" of VM '%s': %s", d->id, v->name, err.msg);
	d->port = port;
	v->disks.n++;
	/* the guest enumerates it in its own time */
	while (find_devices(L, v), !d->device[0]) {
		if (pv_mono_ns() > deadline)
			return luaL_error(L, "vm:attach_disk: disk \"%s\" was plugged into VM '%s', but its guest did not "
					     "show it within 30 s", d->id, v->name);
		struct timespec ts = { 0, 50000000 };
		nanosleep(&ts, NULL);
	}
	return push_disk(L, 1, v, k);
}

/* disk:detach(): unplugs a hot-plugged disk; returns once QEMU let it go,
 * which it does when the guest gave it up (ACPI eject) */
static int d_detach(lua_State *L)
{
	struct lvm *v;
	struct ldisk *d = ldisk_check(L, 1, &v);
	struct ldisk_ud *u = lua_touserdata(L, 1);
	struct pv_err err;
	if (d->detached)
		return 0; /* once */
	if (v->state != LVM_RUNNING)
		return luaL_error(L, "disk:detach of \"%s\": VM '%s' is %s; a disk is detached from a running VM", d->id,
				  v->name, lvm_state_names[v->state]);
	if (d->port < 0 && !d->scsi)
		return luaL_error(L, "disk:detach of \"%s\": it was plugged in at boot, on a bus without hot-plug; only a "
				     "virtio disk plugged in with vm:attach_disk (into this QEMU), or any bus = \"scsi\" disk, "
				     "can be detached", d->id);
	if (vm_unplug_disk_start(&v->vm, u->k, &err) < 0)
		return luaL_error(L, "disk:detach of \"%s\": %s", d->id, err.msg);
	uint64_t deadline = pv_mono_ns() + HOTPLUG_TIMEOUT_NS;
	int rc;
	while ((rc = vm_unplug_disk_done(&v->vm, u->k, &err)) == 0) {
		if (pv_mono_ns() > deadline)
			return luaL_error(L, "disk:detach of \"%s\": the guest of VM '%s' did not let it go within 30 s", d->id,
					  v->name);
		struct timespec ts = { 0, 20000000 };
		nanosleep(&ts, NULL);
	}
	if (rc < 0)
		return luaL_error(L, "disk:detach of \"%s\": %s", d->id, err.msg);
	d->detached = true;
	d->port = -1;
	d->device[0] = 0;
	dserver_stop(&d->srv); /* QEMU is done with it: the server commits */
	return 0;
}

static int d_tostring(lua_State *L)
{
	struct lvm *v;
	struct ldisk *d = ldisk_check(L, 1, &v);
	lua_pushfstring(L, "provium.disk(%s of VM '%s')", d->id, v->name);
	return 1;
}

void ldisk_install(lua_State *L, int methods)
{
	static const luaL_Reg m[] = {
		{ "id", d_id }, { "size", d_size }, { "device", d_device }, { "path", d_path },
		{ "read_sectors", d_read_sectors }, { "write_sectors", d_write_sectors }, { "stats", d_stats },
		{ "detach", d_detach },
		{ NULL, NULL },
	};
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_vm_disk);
	lua_setfield(L, methods, "disk");
	lua_pushcfunction(L, l_attach_disk);
	lua_setfield(L, methods, "attach_disk");
	luaL_newmetatable(L, "provium.disk");
	luaL_newlib(L, m);
	ldfault_install(L, -1);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, d_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
}
