/* fixkey.c - fixture names and cache keys (fixkey.h). */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "discover.h"
#include "scan.h"
#include "fixkey.h"
#include "vm.h"
#include "wire.h"

#define MAX_DEPTH 32

int fx_normalize(const char *ref, char *out, size_t len, struct pv_err *err)
{
	size_t n = strlen(ref), sl = strlen(FX_SUFFIX);
	const char *p;

	if (n >= sl && strcmp(ref + n - sl, FX_SUFFIX) == 0)
		n -= sl;
	if (n == 0)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "a fixture name cannot be empty (e.g. \"db/seeded\" for "
				  "ROOT/db/seeded.fixture.lua)");
	if (n >= len)
		return pv_err_set(err, -ENAMETOOLONG, SIZE_MAX, "fixture name too long");
	if (ref[0] == '/' || ref[n - 1] == '/' || strchr(ref, '\\'))
		return pv_err_set(err, -EINVAL, SIZE_MAX,
				  "fixture \"%s\": use a path relative to the test root with forward slashes "
				  "(e.g. \"db/seeded\")", ref);
	for (p = ref; p < ref + n;) {
		const char *e = memchr(p, '/', (size_t)(ref + n - p));
		size_t cl = e ? (size_t)(e - p) : (size_t)(ref + n - p);
		if (cl == 0 || (cl == 1 && p[0] == '.') || (cl == 2 && p[0] == '.' && p[1] == '.'))
			return pv_err_set(err, -EINVAL, SIZE_MAX,
					  "fixture \"%s\": empty, \".\" or \"..\" path components are not allowed "
					  "(names are relative to the test root)", ref);
		p += cl + 1;
	}
	memcpy(out, ref, n);
	out[n] = 0;
	return 0;
}

/* A root given as a single *.test.lua file stands for its directory. */
static void root_dir(const char *r, char *dir, size_t len)
{
	struct stat st;
	if (stat(r, &st) == 0 && !S_ISDIR(st.st_mode)) {
		const char *sl = strrchr(r, '/');
		snprintf(dir, len, "%.*s", sl ? (int)(sl - r) : 1, sl ? r : ".");
	} else {
		snprintf(dir, len, "%s", r);
	}
}

int fx_find(const char *const *roots, size_t nroots, const char *name, char *out, size_t len, struct pv_err *err)
{
	struct stat st;
	for (size_t i = 0; i < nroots; i++) {
		char dir[4096];
		root_dir(roots[i], dir, sizeof(dir));
		snprintf(out, len, "%s/%s%s", dir, name, FX_SUFFIX);
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
			return 0;
	}
	return pv_err_set(err, -ENOENT, SIZE_MAX, "fixture \"%s\" not found: there is no %s%s under %s%s", name, name,
			  FX_SUFFIX, nroots ? roots[0] : "(no roots)", nroots > 1 ? " or the other roots" : "");
}

char *fx_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rbe");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;
	if (!f)
		return NULL;
	for (;;) {
		if (n == cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	if (ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

static void hash_identity(struct fc_hash *h, const char *tag, const char *path)
{
	struct stat st;
	fc_hash_str(h, tag, path);
	if (stat(path, &st) == 0) {
		fc_hash_u64(h, "size", (uint64_t)st.st_size);
		fc_hash_u64(h, "mtime_s", (uint64_t)st.st_mtim.tv_sec);
		fc_hash_u64(h, "mtime_ns", (uint64_t)st.st_mtim.tv_nsec);
	} else {
		fc_hash_str(h, "missing", strerror(errno));
	}
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The sorted string keys of the table on top of L, as a malloc'd array. */
static char **sorted_keys(lua_State *L, size_t *n)
{
	char **v = NULL;
	size_t cap = 0;
	*n = 0;
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			continue;
		if (*n == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[(*n)++] = strdup(lua_tostring(L, -1));
	}
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_str);
	return v;
}

/* The environment every fixture depends on. */
static void hash_environment(struct fc_hash *h, const char *config_path)
{
	char kernel[4096], initrd[4096];
	struct pv_err e;
	const char *extra = getenv("PROVIUM_GUEST_CMDLINE");

	fc_hash_str(h, "guest_cmdline", extra ? extra : "");
	if (vm_builtin_image(kernel, initrd, &e) == 0) {
		char cpio[4200];
		const char *sl = strrchr(initrd, '/');
		snprintf(cpio, sizeof(cpio), "%.*s/agent.cpio", sl ? (int)(sl - initrd) : 1, sl ? initrd : ".");
		hash_identity(h, "builtin_kernel", kernel);
		hash_identity(h, "builtin_initrd", initrd);
		hash_identity(h, "builtin_agent", cpio);
	} else {
		fc_hash_str(h, "builtin", "none");
	}
	if (!config_path)
		return;
	lua_State *L = luaL_newstate();
	if (!L)
		return;
	luaL_openlibs(L);
	if (luaL_loadfilex(L, config_path, "t") == LUA_OK && lua_pcall(L, 0, 1, 0) == LUA_OK && lua_istable(L, -1) &&
	    lua_getfield(L, -1, "profiles") == LUA_TTABLE) {
		size_t np, nk;
		char **names = sorted_keys(L, &np);
		for (size_t i = 0; i < np; i++) {
			fc_hash_str(h, "profile", names[i]);
			if (lua_getfield(L, -1, names[i]) == LUA_TTABLE) {
				char **keys = sorted_keys(L, &nk);
				for (size_t k = 0; k < nk; k++) {
					lua_getfield(L, -1, keys[k]);
					const char *v = luaL_tolstring(L, -1, NULL);
					if (!strcmp(keys[k], "kernel") || !strcmp(keys[k], "initrd"))
						hash_identity(h, keys[k], v);
					else
						fc_hash_str(h, keys[k], v);
					lua_pop(L, 2);
					free(keys[k]);
				}
				free(keys);
			}
			lua_pop(L, 1);
			free(names[i]);
		}
		free(names);
	}
	lua_close(L);
}

/* module "a.b" -> ROOT/a/b.lua or ROOT/a/b/init.lua */
static int find_module(const char *const *roots, size_t nroots, const char *mod, char *out, size_t len)
{
	char rel[1024];
	struct stat st;
	snprintf(rel, sizeof(rel), "%s", mod);
	for (char *p = rel; *p; p++)
		if (*p == '.')
			*p = '/';
	for (size_t i = 0; i < nroots; i++) {
		char dir[2048];
		root_dir(roots[i], dir, sizeof(dir));
		snprintf(out, len, "%s/%s.lua", dir, rel);
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
			return 0;
		snprintf(out, len, "%s/%s/init.lua", dir, rel);
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
			return 0;
	}
	return -1;
}

struct keyctx {
	const char *const *roots;
	size_t nroots;
	const char *config_path;
	const char *stack[MAX_DEPTH];
	int depth;
	char env[FC_KEY_LEN + 1];
};

static int key_of(struct keyctx *kc, const char *name, char out[FC_KEY_LEN + 1], struct pv_err *err)
{
	char path[4200];
	struct pv_test_file f;
	struct fc_hash h;
	char *src;
	size_t len;
	int rc;

	for (int i = 0; i < kc->depth; i++)
		if (strcmp(kc->stack[i], name) == 0) {
			char chain[2048] = "";
			for (int j = i; j < kc->depth; j++) {
				strncat(chain, kc->stack[j], sizeof(chain) - strlen(chain) - 1);
				strncat(chain, " -> ", sizeof(chain) - strlen(chain) - 1);
			}
			strncat(chain, name, sizeof(chain) - strlen(chain) - 1);
			return pv_err_set(err, -ELOOP, SIZE_MAX, "fixtures reference each other in a cycle: %s", chain);
		}
	if (kc->depth == MAX_DEPTH)
		return pv_err_set(err, -ELOOP, SIZE_MAX, "fixtures nest more than %d deep at \"%s\"", MAX_DEPTH, name);
	if ((rc = fx_find(kc->roots, kc->nroots, name, path, sizeof(path), err)) < 0)
		return rc;
	src = fx_read_file(path, &len);
	if (!src)
		return pv_err_set(err, -errno ? -errno : -EIO, SIZE_MAX, "%s: cannot read: %s", path, strerror(errno));
	if ((rc = pv_scan_source(src, len, &f, err)) < 0) {
		free(src);
		return rc;
	}
	if ((rc = fc_hash_init(&h)) < 0) {
		free(src);
		pv_test_file_release(&f);
		return pv_err_set(err, rc, SIZE_MAX, "out of memory");
	}
	fc_hash_str(&h, "format", "provium-fixture-key-1");
	fc_hash_str(&h, "provium", PROVIUM_VERSION);
	fc_hash_u64(&h, "wire", PV_WIRE_VERSION);
	fc_hash_str(&h, "name", name);
	fc_hash_bytes(&h, "source", src, len);
	free(src);

	/* helpers, transitively: a work list of module names, each seen once */
	{
		char **mods = NULL;
		size_t nmods = 0, cap = 0;
		for (size_t i = 0; i < f.nrequires; i++) {
			if (nmods == cap) {
				char **nm = realloc(mods, (cap = cap ? cap * 2 : 16) * sizeof(*mods));
				if (!nm)
					break;
				mods = nm;
			}
			mods[nmods++] = strdup(f.requires[i]);
		}
		for (size_t i = 0; i < nmods; i++) {
			char mpath[4200];
			fc_hash_str(&h, "require", mods[i]);
			if (find_module(kc->roots, kc->nroots, mods[i], mpath, sizeof(mpath)) < 0)
				continue;
			char *msrc = fx_read_file(mpath, &len);
			struct pv_test_file mf;
			if (!msrc) {
				fc_hash_str(&h, "unreadable", mpath);
				continue;
			}
			fc_hash_bytes(&h, "module", msrc, len);
			if (pv_scan_source(msrc, len, &mf, NULL) == 0) {
				for (size_t r = 0; r < mf.nrequires; r++) {
					bool seen = false;
					for (size_t j = 0; j < nmods && !seen; j++)
						seen = strcmp(mods[j], mf.requires[r]) == 0;
					if (seen)
						continue;
					if (nmods == cap) {
						char **nm = realloc(mods, (cap = cap * 2) * sizeof(*mods));
						if (!nm)
							break;
						mods = nm;
					}
					mods[nmods++] = strdup(mf.requires[r]);
				}
				pv_test_file_release(&mf);
			}
			free(msrc);
		}
		for (size_t i = 0; i < nmods; i++)
			free(mods[i]);
		free(mods);
	}

	/* nested fixtures, in source order */
	kc->stack[kc->depth++] = name;
	for (size_t i = 0; i < f.nfixture_refs && rc == 0; i++) {
		char sub[1024], subkey[FC_KEY_LEN + 1];
		if ((rc = fx_normalize(f.fixture_refs[i], sub, sizeof(sub), err)) < 0 ||
		    (rc = key_of(kc, sub, subkey, err)) < 0) {
			pv_err_prefix(err, "fixture \"%s\"", name);
			break;
		}
		fc_hash_str(&h, "fixture", sub);
		fc_hash_str(&h, "fixture_key", subkey);
	}
	kc->depth--;
	pv_test_file_release(&f);
	fc_hash_str(&h, "environment", kc->env);
	fc_hash_final(&h, out);
	return rc < 0 ? rc : 0;
}

int fx_key(const char *const *roots, size_t nroots, const char *config_path, const char *name,
	   char out[FC_KEY_LEN + 1], struct pv_err *err)
{
	struct keyctx kc = { roots, nroots, config_path, { NULL }, 0, "" };
	struct fc_hash h;
	if (fc_hash_init(&h) < 0)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	hash_environment(&h, config_path);
	fc_hash_final(&h, kc.env);
	return key_of(&kc, name, out, err);
}
