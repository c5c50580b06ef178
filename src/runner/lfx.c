/* lfx.c - provium.vm_fixture / provium.lab_fixture (docs/lua-api.md,
 * "Fixtures"). A fixture is resumed from its cache entry (fcache.h) when one
 * exists for its key (fixkey.h); otherwise the first file to get the key's
 * lock builds it in a fresh Lua state of this runner, stores the snapshot it
 * returns, and everyone resumes that entry. Emits fixture_build_started /
 * _done / _waiting and fixture_cache_hit (only after a resume worked). */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fcache.h"
#include "fixkey.h"
#include "lfx.h"
#include "lsnap.h"
#include "opts.h"
#include "runner_priv.h"
#include "scope.h"

static void emit_path(enum pv_event_kind kind, const char *name)
{
	struct pv_event ev = { .kind = kind };
	switch (kind) {
	case PV_EV_FIXTURE_BUILD_STARTED: ev.u.fixture_build_started.path = pv_str_c(name); break;
	case PV_EV_FIXTURE_CACHE_HIT: ev.u.fixture_cache_hit.path = pv_str_c(name); break;
	default: return;
	}
	runner_emit(&ev);
}

static void emit_done(const char *name, uint64_t ns, uint64_t bytes)
{
	struct pv_event ev = { .kind = PV_EV_FIXTURE_BUILD_DONE };
	ev.u.fixture_build_done = (struct pv_ev_fixture_build_done){ pv_str_c(name), ns, bytes };
	runner_emit(&ev);
}

static void emit_waiting(const char *name, const char *holder)
{
	struct pv_event ev = { .kind = PV_EV_FIXTURE_BUILD_WAITING };
	ev.u.fixture_build_waiting = (struct pv_ev_fixture_build_waiting){ pv_str_c(name), pv_str_c(holder) };
	runner_emit(&ev);
}

static void fixture_wait(bool waiting)
{
	if (ctl_put_fixture_wait(runner_out(), waiting) == 0)
		runner_send();
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *cache_dir(lua_State *L)
{
	const char *d = runner_env()->cache_dir;
	if (!d)
		return (luaL_error(L, "fixtures need a cache directory, and this run has none"), NULL);
	return d;
}

static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (!msg) {
		if (lua_istable(L, 1) && lua_getfield(L, 1, "provium_failure") == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

static void free_paths(char **paths)
{
	for (size_t i = 0; paths && i < LSNAP_NPATHS; i++)
		free(paths[i]);
	free(paths);
}

/* Runs the builder of `name` and stores what it returns under key. The lock
 * is held by the caller. Raises (after emitting fixture_build_done with 0
 * bytes) if the builder fails or returns something else than a Snapshot,
 * releasing the lock first so that files waiting on it go on. */
static int build(lua_State *L, const char *name, const char *key, struct fc_lock *lk)
{
	const char *dir = cache_dir(L);
	size_t nroots, len;
	const char *const *roots = runner_env()->roots;
	nroots = runner_env()->nroots;
	char file[4200], chunk[1100], msg[PV_ERR_MSG_MAX];
	struct pv_err err;
	struct fc_manifest *m = calloc(1, sizeof(*m));
	char **paths = calloc(LSNAP_NPATHS, sizeof(*paths)); /* lsnap_parts fills them (lsnap.h) */
	struct fc_writer w = { .open = false };
	uint64_t t0 = mono_ns(), bytes = 0;
	lua_State *B = NULL;
	char *src = NULL;

	msg[0] = 0;
	if (!m || !paths) {
		free(m);
		free(paths);
		fc_unlock(lk);
		return luaL_error(L, "out of memory");
	}
	if (fx_find(roots, nroots, name, file, sizeof(file), &err) < 0) {
		snprintf(msg, sizeof(msg), "%s", err.msg);
		goto fail_early;
	}
	emit_path(PV_EV_FIXTURE_BUILD_STARTED, name);
	B = runner_builder_state();
	src = fx_read_file(file, &len);
	if (!src) {
		snprintf(msg, sizeof(msg), "%s: cannot read: %s", file, strerror(errno));
		goto fail;
	}
	snprintf(chunk, sizeof(chunk), "@%s%s", name, FX_SUFFIX);
	lua_pushcfunction(B, traceback);
	if (luaL_loadbufferx(B, src, len, chunk, "t") != LUA_OK || lua_pcall(B, 0, 1, 1) != LUA_OK) {
		const char *e = lua_tostring(B, -1);
		if (!e && lua_istable(B, -1) && lua_getfield(B, -1, "provium_failure") == LUA_TSTRING)
			e = lua_tostring(B, -1);
		snprintf(msg, sizeof(msg), "%s", e ? e : "error");
		goto fail;
	}
	if (lsnap_parts(B, -1, m, paths, &err) < 0) {
		snprintf(msg, sizeof(msg), "%.500s%s %.5000s", name, FX_SUFFIX, err.msg);
		goto fail;
	}
	if (fc_begin(dir, key, &w, &err) < 0) {
		snprintf(msg, sizeof(msg), "cannot store it in the fixture cache: %.5000s", err.msg);
		goto fail;
	}
	for (size_t i = 0; i < m->nvms; i++) {
		/* VM names may hold any text; file names in the entry do not */
		snprintf(m->vms[i].file, sizeof(m->vms[i].file), "vm%zu.zst", i);
		if (fc_add_file(&w, paths[i], m->vms[i].file, &m->vms[i].bytes, &err) < 0) {
			snprintf(msg, sizeof(msg), "cannot store it in the fixture cache: %.5000s", err.msg);
			goto fail;
		}
		bytes += m->vms[i].bytes;
	}
	if (paths[FC_MAX_VMS]) {
		snprintf(m->net_file, sizeof(m->net_file), "net.bin");
		if (fc_add_file(&w, paths[FC_MAX_VMS], m->net_file, &m->net_bytes, &err) < 0) {
			snprintf(msg, sizeof(msg), "cannot store it in the fixture cache: %.5000s", err.msg);
			goto fail;
		}
		bytes += m->net_bytes;
	}
	for (size_t j = 0; j < m->ndisks; j++) {
		struct fc_disk *d = &m->disks[j];
		if (!paths[LSNAP_DISK_PATH + j])
			continue; /* a readonly image: nothing of its own */
		snprintf(d->file, sizeof(d->file), "vm%u.disk%zu", d->vm, j);
		if (fc_add_file(&w, paths[LSNAP_DISK_PATH + j], d->file, &d->bytes, &err) < 0) {
			snprintf(msg, sizeof(msg), "cannot store it in the fixture cache: %.5000s", err.msg);
			goto fail;
		}
	}
	bytes += lsnap_disk_bytes(m);
	snprintf(m->fixture, sizeof(m->fixture), "%s", name);
	snprintf(m->key, sizeof(m->key), "%s", key);
	m->created_unix = (uint64_t)time(NULL);
	m->build_ns = mono_ns() - t0;
	if (fc_commit(&w, m, &err) < 0) {
		snprintf(msg, sizeof(msg), "cannot store it in the fixture cache: %.5000s", err.msg);
		goto fail;
	}
	scope_close_state(B); /* its VMs shut down */
	free(src);
	free(m);
	free_paths(paths);
	emit_done(name, mono_ns() - t0, bytes);
	return 0;
fail:
	fc_abort(&w);
	if (B)
		scope_close_state(B);
	emit_done(name, mono_ns() - t0, 0);
fail_early:
	free(src);
	free(m);
	free_paths(paths);
	fc_unlock(lk);
	return luaL_error(L, "fixture \"%s\" failed to build: %s", name, msg);
}

static void warn(const char *name, const char *key, const char *what, const char *why)
{
	fprintf(stderr, "provium: warning: fixture \"%s\": cache entry %s %s (%s); deleted, building it again\n", name,
		key, what, why);
}

/* Resumes fixture `name` (key) into L, building it first if needed; pushes
 * the VM or, with lab, the table of VMs. force: rebuild even if cached. */
static int obtain(lua_State *L, const char *name, const char *key, bool lab, const char *rename_to, bool force)
{
	const char *dir = cache_dir(L);
	const char *holder = runner_env()->path;
	char **entry = scope_strv_box(L, 1); /* freed however this call ends */
	bool built = false;

	if (asprintf(&entry[0], "%s/%s", dir, key) < 0) {
		entry[0] = NULL;
		return luaL_error(L, "out of memory");
	}
	for (;;) {
		struct fc_manifest m;
		struct fc_lock lk;
		struct pv_err err;
		char held[512];
		int r;

		if (!force) {
			r = fc_lookup(dir, key, &m, &err);
			if (r == 1) {
				if (!lab && m.nvms != 1)
					return luaL_error(L, "fixture \"%s\" holds %d VMs (its builder returned "
							  "provium:snapshot()): use provium.lab_fixture(\"%s\")",
							  name, (int)m.nvms, name);
				if (lsnap_resume(L, &m, entry[0], lab ? NULL : rename_to, lab, &err) == 1) {
					fc_touch(dir, key);
					if (!built)
						emit_path(PV_EV_FIXTURE_CACHE_HIT, name);
					return 1;
				}
				if (built)
					return luaL_error(L, "fixture \"%s\": the snapshot just built does not resume: %s",
							  name, err.msg);
				warn(name, key, "does not resume", err.msg);
				fc_remove(dir, key, NULL);
			} else if (r < 0) {
				warn(name, key, "is unreadable", err.msg);
				fc_remove(dir, key, NULL);
			}
		}
		/* build it, or wait for the file that is building it */
		r = fc_lock_try(dir, key, holder, &lk, held, sizeof(held), &err);
		if (r < 0)
			return luaL_error(L, "fixture \"%s\": %s", name, err.msg);
		if (r == 0) {
			emit_waiting(name, held);
			fixture_wait(true); /* the scheduler's deadlock check counts us as stuck */
			r = fc_lock_wait(dir, key, holder, &lk, &err);
			fixture_wait(false);
			if (r < 0)
				return luaL_error(L, "fixture \"%s\": %s", name, err.msg);
		}
		if (force) {
			fc_remove(dir, key, NULL);
			force = false;
		} else if ((r = fc_lookup(dir, key, &m, &err)) == 1) {
			fc_unlock(&lk); /* a peer built it meanwhile */
			continue;
		} else if (r < 0) {
			fc_remove(dir, key, NULL);
		}
		build(L, name, key, &lk); /* unlocks before it raises */
		fc_unlock(&lk);
		built = true;
	}
}

/* provium.vm_fixture(name [, opts]) / provium.lab_fixture(name), also with ':' */
static int get(lua_State *L, bool lab)
{
	int a = 1;
	char name[1024], key[FC_KEY_LEN + 1];
	const char *rename_to = NULL;
	struct pv_err err;
	size_t nroots;
	const char *const *roots = runner_env()->roots;
	nroots = runner_env()->nroots;

	lua_getglobal(L, "provium");
	if (lua_rawequal(L, 1, -1))
		a = 2;
	lua_pop(L, 1);
	const char *ref = luaL_checkstring(L, a);
	static const char *const vm_keys[] = { "name", NULL }, *const lab_keys[] = { NULL };
	if (opts_check(L, a + 1, lab ? "provium.lab_fixture options" : "provium.vm_fixture options",
			      lab ? lab_keys : vm_keys)) {
		int t = lua_getfield(L, a + 1, "name");
		if (t != LUA_TNIL && t != LUA_TSTRING)
			return luaL_error(L, "provium.vm_fixture options: name must be a string (the VM's name), got %s",
					  lua_typename(L, t));
		rename_to = lua_tostring(L, -1); /* stays on the stack, alive */
	}
	if (fx_normalize(ref, name, sizeof(name), &err) < 0 ||
	    fx_key(roots, nroots, runner_env()->config_path, name, key, &err) < 0)
		return luaL_error(L, "%s", err.msg);
	return obtain(L, name, key, lab, rename_to, false);
}

static int l_vm_fixture(lua_State *L) { return get(L, false); }
static int l_lab_fixture(lua_State *L) { return get(L, true); }

int lfx_build_cmd(lua_State *L)
{
	const char *ref = luaL_checkstring(L, 1);
	bool force = lua_toboolean(L, 2);
	char name[1024], key[FC_KEY_LEN + 1];
	struct pv_err err;
	size_t nroots;
	const char *const *roots = runner_env()->roots;
	nroots = runner_env()->nroots;

	if (fx_normalize(ref, name, sizeof(name), &err) < 0 ||
	    fx_key(roots, nroots, runner_env()->config_path, name, key, &err) < 0)
		return luaL_error(L, "%s", err.msg);
	/* resuming what was built proves the entry good; the VMs end with the test */
	obtain(L, name, key, true, NULL, force);
	lua_pushstring(L, key);
	return 1;
}

void lfx_install(lua_State *L)
{
	lua_pushliteral(L, "vm_fixture");
	lua_pushcfunction(L, l_vm_fixture);
	lua_rawset(L, -3);
	lua_pushliteral(L, "lab_fixture");
	lua_pushcfunction(L, l_lab_fixture);
	lua_rawset(L, -3);
}
