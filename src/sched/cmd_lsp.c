/* cmd_lsp.c - provium lsp-setup [--force] [DIR]: lua-language-server
 * annotations of the test API in DIR/.provium-meta/types.lua, and a
 * DIR/.luarc.json that points the server at them (docs/cli.md, "provium
 * lsp-setup"). The annotations are rendered from src/runner/api_annotations.lua
 * by src/sched/lsp_gen.lua, both embedded in the binary at build time
 * (tools/embed.py): what is written is the API this binary binds, which
 * tests/suite/lsp.test.lua checks against the bindings of a real runner.
 *
 * Nothing is written before everything was checked: a DIR that is not a
 * writable directory, or a .luarc.json it cannot merge into, exits 2 with one
 * line and leaves DIR as it was. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "err.h"
#include "sys.h"

extern const char lsp_api_src[], lsp_gen_src[];
extern const size_t lsp_api_src_len, lsp_gen_src_len;

#define META_DIR ".provium-meta"
#define META_FILE "types.lua"
#define LUA_VERSION_NAME "Lua 5.4"
#define LUARC_MAX (16u << 20)

struct rendered {
	char *text;
	size_t len;
	int nclasses, nfunctions;
};

/* The annotations, rendered in a Lua state of their own; 0, or -EINVAL with
 * the generator's complaint in err (a bug in the embedded sources). */
static int render(struct rendered *r, struct pv_err *err)
{
	lua_State *L = luaL_newstate();
	int rc = 0;
	if (!L)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	luaL_openlibs(L);
	if (luaL_loadbuffer(L, lsp_api_src, lsp_api_src_len, "=api_annotations.lua") != LUA_OK ||
	    lua_pcall(L, 0, 1, 0) != LUA_OK ||
	    luaL_loadbuffer(L, lsp_gen_src, lsp_gen_src_len, "=lsp_gen.lua") != LUA_OK) {
		rc = pv_err_set(err, -EINVAL, SIZE_MAX, "%s", lua_tostring(L, -1));
		goto out;
	}
	lua_insert(L, -2); /* gen, api */
	lua_pushstring(L, PROVIUM_VERSION);
	if (lua_pcall(L, 2, 4, 0) != LUA_OK) {
		rc = pv_err_set(err, -EINVAL, SIZE_MAX, "%s", lua_tostring(L, -1));
		goto out;
	}
	size_t len;
	const char *text = lua_tolstring(L, -4, &len);
	if (!text || !(r->text = malloc(len + 1))) {
		rc = pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
		goto out;
	}
	memcpy(r->text, text, len + 1);
	r->len = len;
	r->nclasses = (int)lua_tointeger(L, -2);
	r->nfunctions = (int)lua_tointeger(L, -1);
out:
	lua_close(L);
	return rc;
}

/* ---- .luarc.json ------------------------------------------------------------ */

/* What provium needs of a .luarc.json, and what a merge changed or kept. */
struct merge {
	char added[512];   /* "workspace.library += ..., runtime.version = ..." */
	char kept[256];    /* a runtime.version the user chose */
	char refused[512]; /* why provium does not touch the file */
};

/* Appends what to the list in buf ("a, b"). */
static void note(char *buf, size_t len, const char *what)
{
	size_t o = strlen(buf);
	snprintf(buf + o, len - o, "%s%s", o ? ", " : "", what);
}

/* A setting of a .luarc.json: LuaLS reads it flat ("workspace.library": ...)
 * or nested ("workspace": {"library": ...}). *owner gets the object that
 * holds it, or should (a nested section that exists, else root), *key the
 * key in it; returns the value, or NULL when the setting is not there. */
static json_t *setting(json_t *root, const char *sect, const char *name, json_t **owner, const char **key,
		       char *flat, size_t flatlen)
{
	snprintf(flat, flatlen, "%s.%s", sect, name);
	json_t *v = json_object_get(root, flat), *s = json_object_get(root, sect);
	if (v || !json_is_object(s)) {
		*owner = root;
		*key = flat;
		return v;
	}
	*owner = s;
	*key = name;
	return json_object_get(s, name);
}

/* Merges provium's settings into root (a .luarc.json's object): adds
 * META_DIR to workspace.library and sets runtime.version when it is not
 * set; keeps everything else. 0, or -EINVAL with m->refused saying why. */
static int merge_luarc(json_t *root, struct merge *m)
{
	char flat[64];
	json_t *owner, *v;
	const char *key;

	v = setting(root, "workspace", "library", &owner, &key, flat, sizeof(flat));
	if (!v) {
		json_object_set_new(owner, key, json_pack("[s]", META_DIR));
		note(m->added, sizeof(m->added), "workspace.library [\"" META_DIR "\"]");
	} else if (!json_is_array(v)) {
		snprintf(m->refused, sizeof(m->refused), "its workspace.library is not a list");
		return -EINVAL;
	} else {
		size_t i;
		json_t *e;
		bool have = false;
		json_array_foreach(v, i, e) have = have || (json_is_string(e) && (!strcmp(json_string_value(e), META_DIR) ||
										  !strcmp(json_string_value(e), "./" META_DIR)));
		if (!have) {
			json_array_append_new(v, json_string(META_DIR));
			note(m->added, sizeof(m->added), "\"" META_DIR "\" to workspace.library");
		}
	}

	v = setting(root, "runtime", "version", &owner, &key, flat, sizeof(flat));
	if (!v) {
		json_object_set_new(owner, key, json_string(LUA_VERSION_NAME));
		note(m->added, sizeof(m->added), "runtime.version \"" LUA_VERSION_NAME "\"");
	} else if (!json_is_string(v) || strcmp(json_string_value(v), LUA_VERSION_NAME) != 0) {
		/* the user's choice: said, not overridden */
		char *shown = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		snprintf(m->kept, sizeof(m->kept), "%s", shown ? shown : "?");
		free(shown);
	}
	return 0;
}

static json_t *fresh_luarc(void)
{
	return json_pack("{s:s, s:s, s:[s]}", "$schema", "https://raw.githubusercontent.com/LuaLS/vscode-lua/master/setting/schema.json",
			 "runtime.version", LUA_VERSION_NAME, "workspace.library", META_DIR);
}

/* ---- files ------------------------------------------------------------------ */

/* path := data, atomically (a temporary file in the same directory renamed
 * over it); -errno. A symlink at path is followed: its target is replaced. */
static int write_atomic(const char *path, const char *data, size_t len)
{
	char real[4096], tmp[4200];
	struct stat st;
	const char *dst = path;
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		if (!realpath(path, real))
			return -errno;
		dst = real;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", dst, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	for (size_t o = 0; o < len;) {
		ssize_t n = write(fd, data + o, len - o);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			unlink(tmp);
			return -e;
		}
		o += (size_t)n;
	}
	if (close(fd) < 0 || rename(tmp, dst) < 0) {
		int e = errno;
		unlink(tmp);
		return -e;
	}
	return 0;
}

/* Whether path holds exactly data. */
static bool same_content(const char *path, const char *data, size_t len)
{
	char *old = NULL;
	size_t olen = 0;
	bool same = sys_read_file(path, len + 1, &old, &olen) == 0 && olen == len && memcmp(old, data, len) == 0;
	free(old);
	return same;
}

/* "DIR/name", or "name" for DIR "." (what the messages show). */
static void join(char *out, size_t len, const char *dir, const char *name)
{
	if (!strcmp(dir, "."))
		snprintf(out, len, "%s", name);
	else
		snprintf(out, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
}

int cmd_lsp_setup(const struct cli_opts *o)
{
	const char *dir = o->lsp_dir ? o->lsp_dir : ".";
	char meta_dir[4200], meta[4300], luarc[4200];
	struct rendered r = { 0 };
	struct merge m = { "", "", "" };
	struct pv_err err;
	struct stat st;
	json_t *root = NULL;
	char *luarc_text = NULL;
	bool luarc_new = false;
	int rc = CLI_EXIT_USAGE, e;

	if (!*dir)
		return cli_fail("lsp-setup: the directory is an empty string");
	if (strlen(dir) > 4000)
		return cli_fail("lsp-setup: the directory's path is too long");
	if (stat(dir, &st) < 0)
		return cli_fail("lsp-setup: %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return cli_fail("lsp-setup: %s is not a directory (provium lsp-setup [--force] [DIR])", dir);
	if (access(dir, W_OK | X_OK) < 0)
		return cli_fail("lsp-setup: cannot write in %s: %s", dir, strerror(errno));
	join(meta_dir, sizeof(meta_dir), dir, META_DIR);
	join(meta, sizeof(meta), dir, META_DIR "/" META_FILE);
	join(luarc, sizeof(luarc), dir, ".luarc.json");
	if (lstat(meta_dir, &st) == 0 && !S_ISDIR(st.st_mode) && (stat(meta_dir, &st) < 0 || !S_ISDIR(st.st_mode)))
		return cli_fail("lsp-setup: %s exists and is not a directory; remove it and run provium lsp-setup again",
				meta_dir);

	if (render(&r, &err) < 0) {
		fprintf(stderr, "provium: lsp-setup: cannot render the annotations (a bug): %s\n", err.msg);
		return CLI_EXIT_USAGE;
	}

	/* the .luarc.json to write, before anything is written */
	if (!o->force && access(luarc, F_OK) == 0) {
		char *old = NULL;
		size_t olen = 0;
		json_error_t jerr;
		if ((e = sys_read_file(luarc, LUARC_MAX, &old, &olen)) < 0) {
			cli_fail("lsp-setup: cannot read %s: %s", luarc, strerror(-e));
			goto out;
		}
		root = json_loadb(old, olen, JSON_REJECT_DUPLICATES, &jerr);
		free(old);
		if (!root)
			snprintf(m.refused, sizeof(m.refused), "it is not plain JSON (line %d: %s)", jerr.line, jerr.text);
		else if (!json_is_object(root))
			snprintf(m.refused, sizeof(m.refused), "it is not a JSON object");
		else
			merge_luarc(root, &m);
		if (m.refused[0]) {
			cli_fail("lsp-setup: %s: cannot merge provium's settings into it: %s; add \"workspace.library\": "
				 "[\"%s\"] and \"runtime.version\": \"%s\" yourself, or replace the file with provium "
				 "lsp-setup --force",
				 luarc, m.refused, META_DIR, LUA_VERSION_NAME);
			goto out;
		}
	} else {
		root = fresh_luarc();
		luarc_new = true;
	}
	luarc_text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!luarc_text) {
		cli_fail("out of memory");
		goto out;
	}
	size_t luarc_len = strlen(luarc_text);
	char *nl = realloc(luarc_text, luarc_len + 2);
	if (!nl) {
		cli_fail("out of memory");
		goto out;
	}
	luarc_text = nl;
	memcpy(luarc_text + luarc_len, "\n", 2);
	luarc_len++;

	if (mkdir(meta_dir, 0755) < 0 && errno != EEXIST) {
		cli_fail("lsp-setup: cannot make %s: %s", meta_dir, strerror(errno));
		goto out;
	}
	if (same_content(meta, r.text, r.len)) {
		printf("%s: up to date\n", meta);
	} else if ((e = write_atomic(meta, r.text, r.len)) < 0) {
		cli_fail("lsp-setup: cannot write %s: %s", meta, strerror(-e));
		goto out;
	} else {
		printf("%s: written (%d classes, %d functions)\n", meta, r.nclasses, r.nfunctions);
	}

	if (!luarc_new && !m.added[0]) {
		printf("%s: up to date\n", luarc);
	} else if (same_content(luarc, luarc_text, luarc_len)) {
		printf("%s: up to date\n", luarc);
	} else if ((e = write_atomic(luarc, luarc_text, luarc_len)) < 0) {
		cli_fail("lsp-setup: cannot write %s: %s", luarc, strerror(-e));
		goto out;
	} else if (luarc_new) {
		printf("%s: written\n", luarc);
	} else {
		printf("%s: merged (added %s)\n", luarc, m.added);
	}
	if (m.kept[0])
		fprintf(stderr, "provium: lsp-setup: %s keeps its runtime.version %s; provium runs test files as %s\n",
			luarc, m.kept, LUA_VERSION_NAME);
	rc = 0;
out:
	json_decref(root);
	free(luarc_text);
	free(r.text);
	return rc;
}
