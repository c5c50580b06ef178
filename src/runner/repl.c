/* repl.c - the interactive Lua prompt (contract in repl.h). */
#include "repl.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>
#include <termcap.h>
#include <termios.h>

#include "agent_client.h"
#include "buf.h"
#include "runner_priv.h"
#include "tclock.h"
#include "sys.h"
#include "vm.h"

static bool enabled;
static volatile sig_atomic_t got_int;

void repl_enable(void)
{
	enabled = true;
	vm_set_own_process_group(true);
}

bool repl_enabled(void) { return enabled; }

/* ---- the printer -------------------------------------------------------------- */

#define SHOW_STR_MAX 4096
#define SHOW_DEPTH 5
#define SHOW_ENTRIES 200

static void add(struct pv_buf *b, const char *s) { pv_buf_append(b, s, strlen(s)); }

static void addf(struct pv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(struct pv_buf *b, const char *fmt, ...)
{
	char t[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t, sizeof(t), fmt, ap);
	va_end(ap);
	add(b, t);
}

static void show_string(struct pv_buf *b, const char *s, size_t n)
{
	size_t shown = n > SHOW_STR_MAX ? SHOW_STR_MAX : n;
	add(b, "\"");
	for (size_t i = 0; i < shown; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': add(b, "\\\""); break;
		case '\\': add(b, "\\\\"); break;
		case '\n': add(b, "\\n"); break;
		case '\t': add(b, "\\t"); break;
		case '\r': add(b, "\\r"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				addf(b, "\\%u", c);
			else
				pv_buf_append(b, &s[i], 1);
		}
	}
	add(b, "\"");
	if (shown < n)
		addf(b, "... (%zu more bytes)", n - shown);
}

static bool is_ident(const char *s, size_t n)
{
	static const char *const reserved[] = { "and", "break", "do", "else", "elseif", "end", "false", "for",
						"function", "goto", "if", "in", "local", "nil", "not", "or",
						"repeat", "return", "then", "true", "until", "while", NULL };
	if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	for (size_t i = 0; reserved[i]; i++)
		if (strlen(reserved[i]) == n && !memcmp(reserved[i], s, n))
			return false;
	return true;
}

/* Keys sort: numbers first (by value), then strings, then the rest. */
static int key_cmp(lua_State *L)
{
	int ta = lua_type(L, 1), tb = lua_type(L, 2);
	if (ta == LUA_TNUMBER && tb == LUA_TNUMBER)
		lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
	else if (ta == LUA_TSTRING && tb == LUA_TSTRING)
		lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
	else
		lua_pushboolean(L, (ta == LUA_TNUMBER ? 0 : ta == LUA_TSTRING ? 1 : 2) <
					   (tb == LUA_TNUMBER ? 0 : tb == LUA_TSTRING ? 1 : 2));
	return 1;
}

static void show(lua_State *L, struct pv_buf *b, int idx, int depth, int seen);

static void indent(struct pv_buf *b, int depth)
{
	for (int i = 0; i < depth; i++)
		add(b, "  ");
}

/* Entry i of keys (sorted keys of the table at idx; n: its sequence length). */
static void show_entry(lua_State *L, struct pv_buf *b, int idx, int keys, size_t i, lua_Integer n, int depth, int seen)
{
	lua_rawgeti(L, keys, (lua_Integer)i);
	int k = lua_gettop(L);
	if (!(lua_isinteger(L, k) && lua_tointeger(L, k) >= 1 && lua_tointeger(L, k) <= n)) {
		size_t kl;
		const char *ks = lua_type(L, k) == LUA_TSTRING ? lua_tolstring(L, k, &kl) : NULL;
		if (ks && is_ident(ks, kl)) {
			pv_buf_append(b, ks, kl);
		} else {
			add(b, "[");
			show(L, b, k, depth + 1, seen);
			add(b, "]");
		}
		add(b, " = ");
	}
	lua_pushvalue(L, k);
	lua_rawget(L, idx);
	show(L, b, lua_gettop(L), depth + 1, seen);
	lua_pop(L, 2);
}

static void show_entries(lua_State *L, struct pv_buf *b, int idx, int keys, size_t count, int depth, int seen,
			 bool oneline)
{
	lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
	add(b, "{");
	for (size_t i = 1; i <= count; i++) {
		if (oneline) {
			add(b, i > 1 ? ", " : " ");
		} else {
			add(b, i > 1 ? ",\n" : "\n");
			indent(b, depth + 1);
		}
		if (i > SHOW_ENTRIES) {
			addf(b, "... (%zu more)", count - SHOW_ENTRIES);
			break;
		}
		show_entry(L, b, idx, keys, i, n, depth, seen);
	}
	if (oneline) {
		add(b, " }");
	} else {
		add(b, "\n");
		indent(b, depth);
		add(b, "}");
	}
}

static void show_table(lua_State *L, struct pv_buf *b, int idx, int depth, int seen)
{
	size_t count = 0;
	bool simple = true; /* no tables, functions or objects inside: one line if it is short */

	lua_pushvalue(L, idx);
	if (lua_rawget(L, seen) != LUA_TNIL) {
		lua_pop(L, 1);
		add(b, "<cycle>");
		return;
	}
	lua_pop(L, 1);
	if (depth >= SHOW_DEPTH) {
		add(b, "{...}");
		return;
	}
	lua_pushvalue(L, idx);
	lua_pushboolean(L, 1);
	lua_rawset(L, seen);
	/* the keys, sorted */
	lua_newtable(L);
	int keys = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int vt = lua_type(L, -1);
		if (vt == LUA_TTABLE || vt == LUA_TUSERDATA || vt == LUA_TFUNCTION)
			simple = false;
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawseti(L, keys, (lua_Integer)++count);
	}
	lua_getglobal(L, "table");
	lua_getfield(L, -1, "sort");
	lua_remove(L, -2);
	lua_pushvalue(L, keys);
	lua_pushcfunction(L, key_cmp);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK)
		lua_pop(L, 1);
	if (count == 0) {
		add(b, "{}");
	} else if (simple) {
		size_t start = b->len;
		show_entries(L, b, idx, keys, count, depth, seen, true);
		if (b->len - start > 100) { /* a long one-liner reads better over lines */
			b->len = start;
			show_entries(L, b, idx, keys, count, depth, seen, false);
		}
	} else {
		show_entries(L, b, idx, keys, count, depth, seen, false);
	}
	lua_pop(L, 1); /* keys */
}

static void show(lua_State *L, struct pv_buf *b, int idx, int depth, int seen)
{
	idx = lua_absindex(L, idx);
	switch (lua_type(L, idx)) {
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		show_string(b, s, n);
		return;
	}
	case LUA_TTABLE:
		if (!luaL_getmetafield(L, idx, "__tostring")) {
			show_table(L, b, idx, depth, seen);
			return;
		}
		lua_pop(L, 1);
		break;
	default:
		break;
	}
	/* numbers, booleans, nil, and objects with their __tostring (a VM, a Disk) */
	size_t n;
	const char *s = luaL_tolstring(L, idx, &n);
	pv_buf_append(b, s, n);
	lua_pop(L, 1);
}

static int show_protected(lua_State *L)
{
	struct pv_buf *b = lua_touserdata(L, 2);
	lua_newtable(L); /* seen */
	show(L, b, 1, 0, lua_gettop(L));
	return 0;
}

void repl_show(lua_State *L, int idx)
{
	struct pv_buf b = PV_BUF_INIT;
	idx = lua_absindex(L, idx);
	lua_pushcfunction(L, show_protected);
	lua_pushvalue(L, idx);
	lua_pushlightuserdata(L, &b);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		/* a __tostring that raised: say so rather than nothing */
		const char *e = lua_tostring(L, -1);
		b.len = 0;
		add(&b, "<cannot show: ");
		add(&b, e ? e : "error");
		add(&b, ">");
		lua_pop(L, 1);
	}
	lua_pushlstring(L, (const char *)b.data, b.len);
	pv_buf_release(&b);
}

/* ---- completion -------------------------------------------------------------- */

static lua_State *CL; /* the state at the prompt, for the completer */
static int env_ref = LUA_NOREF;
static char **cands;
static size_t ncands, capcands;

static void cand_add(const char *prefix, size_t plen, const char *name, const char *word, size_t wlen)
{
	char *s;
	if (strncmp(name, word + plen, wlen - plen) != 0)
		return;
	for (size_t i = 0; i < ncands; i++)
		if (!strncmp(cands[i] + plen, name, strlen(name) + 1))
			return;
	if (ncands == capcands) {
		size_t cap = capcands ? capcands * 2 : 32;
		char **p = realloc(cands, cap * sizeof(*p));
		if (!p)
			return;
		cands = p;
		capcands = cap;
	}
	if (!(s = malloc(plen + strlen(name) + 1)))
		return;
	memcpy(s, prefix, plen);
	strcpy(s + plen, name);
	cands[ncands++] = s;
}

/* Adds the string keys of the table at idx (and of its __index tables, and
 * of a table an __index function holds as its first upvalue: a VM's
 * methods) that extend word after plen bytes. */
static void cand_keys(lua_State *L, int idx, const char *word, size_t plen, size_t wlen, bool methods, int level)
{
	idx = lua_absindex(L, idx);
	if (level > 4)
		return;
	if (lua_type(L, idx) == LUA_TTABLE) {
		lua_pushnil(L);
		while (lua_next(L, idx)) {
			if (lua_type(L, -2) == LUA_TSTRING && (!methods || lua_isfunction(L, -1))) {
				const char *k = lua_tostring(L, -2);
				if (k[0] != '_' || word[plen] == '_')
					cand_add(word, plen, k, word, wlen);
			}
			lua_pop(L, 1);
		}
	}
	if (lua_getmetatable(L, idx)) {
		if (lua_getfield(L, -1, "__index") == LUA_TTABLE) {
			cand_keys(L, -1, word, plen, wlen, methods, level + 1);
		} else if (lua_type(L, -1) == LUA_TFUNCTION && lua_getupvalue(L, -1, 1)) {
			if (lua_type(L, -1) == LUA_TTABLE)
				cand_keys(L, -1, word, plen, wlen, methods, level + 1);
			lua_pop(L, 1);
		}
		lua_pop(L, 2);
	}
}

static int index_protected(lua_State *L)
{
	lua_gettable(L, 1);
	return 1;
}

/* Fills cands for word (an expression such as `vm:ru` or `provium.v`). */
static void collect(const char *word)
{
	lua_State *L = CL;
	size_t wlen = strlen(word), plen = 0;
	const char *p;
	int top = lua_gettop(L);

	for (size_t i = 0; i < ncands; i++)
		free(cands[i]);
	ncands = 0;
	lua_rawgeti(L, LUA_REGISTRYINDEX, env_ref);
	/* walk the chain before the last separator */
	for (p = word; *p; p++) {
		if (*p != '.' && *p != ':')
			continue;
		lua_pushcfunction(L, index_protected);
		lua_insert(L, -2);
		lua_pushlstring(L, word + plen, (size_t)(p - word) - plen);
		if (lua_pcall(L, 2, 1, 0) != LUA_OK || lua_isnil(L, -1)) {
			lua_settop(L, top);
			return;
		}
		plen = (size_t)(p - word) + 1;
	}
	bool methods = plen > 0 && word[plen - 1] == ':';
	cand_keys(L, -1, word, plen, wlen, methods, 0);
	lua_settop(L, top);
}

static char *generator(const char *text, int state)
{
	static size_t next;
	(void)text;
	if (!state)
		next = 0;
	return next < ncands ? strdup(cands[next++]) : NULL;
}

static char **complete(const char *text, int start, int end)
{
	(void)start;
	(void)end;
	rl_attempted_completion_over = 1; /* never file names */
	rl_completion_append_character = '\0'; /* a method's "(" is the user's to type */
	collect(text);
	return ncands ? rl_completion_matches(text, generator) : NULL;
}

/* ---- the loop -------------------------------------------------------------- */

static void on_int(int sig)
{
	(void)sig;
	got_int = 1;
	agent_interrupt = 1;
}

static lua_Hook saved_hook;
static int saved_mask, saved_count;

static void hook(lua_State *L, lua_Debug *ar)
{
	if (got_int) {
		got_int = 0;
		luaL_error(L, "interrupted");
	}
	if (saved_hook)
		saved_hook(L, ar);
}

static int repl_print(lua_State *L)
{
	int n = lua_gettop(L);
	for (int i = 1; i <= n; i++) {
		size_t len;
		const char *s = luaL_tolstring(L, i, &len);
		if (i > 1)
			fputc('\t', stdout);
		fwrite(s, 1, len, stdout);
		lua_pop(L, 1);
	}
	fputc('\n', stdout);
	fflush(stdout);
	return 0;
}

/* Whether the frames in tb[0, n) say nothing the message does not: only C
 * functions and the prompt's own one-line chunk. */
static bool frames_trivial(const char *tb, size_t n)
{
	for (const char *l = tb; l < tb + n;) {
		const char *e = memchr(l, '\n', (size_t)(tb + n - l));
		size_t len = e ? (size_t)(e - l) : (size_t)(tb + n - l);
		if (!(len >= 4 && !memcmp(l, "\t[C]", 4)) && !(len == 23 && !memcmp(l, "\tstdin:1: in main chunk", 23)))
			return false;
		l += len + 1;
	}
	return true;
}

/* The error with the stack of the code typed at the prompt: the frames
 * below it (t:pause and the test that called it) are the REPL's own, and a
 * stack of nothing but the prompt's line is left out. */
static int traceback(lua_State *L)
{
	if (lua_type(L, 1) == LUA_TSTRING) {
		luaL_traceback(L, L, lua_tostring(L, 1), 1);
		const char *tb = lua_tostring(L, -1), *cut = strstr(tb, "\n\t[C]: in method 'pause'");
		if (!cut)
			cut = strstr(tb, "\n\t[C]: in function 'pause'");
		size_t n = cut ? (size_t)(cut - tb) : strlen(tb);
		const char *frames = strstr(tb, "\nstack traceback:\n");
		if (frames && frames < tb + n && frames_trivial(frames + 18, (size_t)(tb + n - frames - 18)))
			n = (size_t)(frames - tb);
		lua_pushlstring(L, tb, n);
	} else
		luaL_tolstring(L, 1, NULL); /* provium's error objects have a __tostring */
	return 1;
}

/* Loads code with the prompt's environment: 0, 1 if it is incomplete (wants
 * more lines), -1 on a syntax error (message pushed). */
static int load_line(lua_State *L, const char *code)
{
	size_t n = strlen(code);
	char *ret = malloc(n + 8);
	int rc;

	if (!ret) {
		lua_pushliteral(L, "out of memory");
		return -1;
	}
	/* an expression first, so `1 + 1` and `vm:run("ls")` show their values */
	memcpy(ret, "return ", 7);
	memcpy(ret + 7, code, n + 1);
	rc = luaL_loadbuffer(L, ret, n + 7, "=stdin");
	free(ret);
	if (rc != LUA_OK) {
		lua_pop(L, 1);
		rc = luaL_loadbuffer(L, code, n, "=stdin");
	}
	if (rc == LUA_OK) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, env_ref);
		lua_setupvalue(L, -2, 1);
		return 0;
	}
	size_t ml;
	const char *m = lua_tolstring(L, -1, &ml);
	if (rc == LUA_ERRSYNTAX && m && ml >= 5 && !strcmp(m + ml - 5, "<eof>")) {
		lua_pop(L, 1);
		return 1;
	}
	return -1;
}

static void eval(lua_State *L, const char *code)
{
	int base = lua_gettop(L);
	lua_pushcfunction(L, traceback);
	if (load_line(L, code) != 0) {
		fprintf(stdout, "%s\n", lua_tostring(L, -1));
		lua_settop(L, base);
		return;
	}
	got_int = 0;
	agent_interrupt = 0;
	saved_hook = lua_gethook(L);
	saved_mask = lua_gethookmask(L);
	saved_count = lua_gethookcount(L);
	lua_sethook(L, hook, LUA_MASKCOUNT, 1000);
	int rc = lua_pcall(L, 0, LUA_MULTRET, base + 1);
	lua_sethook(L, saved_hook, saved_mask, saved_count);
	got_int = 0;
	agent_interrupt = 0;
	if (rc != LUA_OK) {
		fprintf(stdout, "error: %s\n", lua_tostring(L, -1));
	} else {
		for (int i = base + 2; i <= lua_gettop(L); i++) {
			repl_show(L, i);
			fprintf(stdout, "%s\n", lua_tostring(L, -1));
			lua_pop(L, 1);
		}
	}
	fflush(stdout);
	lua_settop(L, base);
}

/* A terminal libedit cannot drive (TERM unset, dumb, emacs, or no terminfo
 * entry): it cannot edit lines there, so the prompt reads plain lines in
 * the terminal's own cooked mode instead: no completion or history keys,
 * but every key lands. */
static bool plain_terminal(void)
{
	const char *term = getenv("TERM");
	if (!term || !*term || !strcmp(term, "dumb") || !strcmp(term, "emacs"))
		return true;
	return tgetent(NULL, term) != 1;
}

/* One line from the plain terminal, without its newline; NULL at end of
 * input, or with got_int set on ^C. */
static char *plain_readline(const char *prompt)
{
	char *line = NULL;
	size_t cap = 0;

	fputs(prompt, stdout);
	fflush(stdout);
	errno = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (n < 0) {
		clearerr(stdin);
		free(line);
		return NULL;
	}
	if (n > 0 && line[n - 1] == '\n')
		line[n - 1] = '\0';
	return line;
}

/* libedit prints the prompt before it takes the terminal out of cooked
 * mode (it does so at the first key it reads), so a key typed right after
 * the prompt would be echoed twice by the terminal and a ^D there lost.
 * Taking the terminal out of cooked mode first closes that window: the
 * keys wait unechoed in the input queue. libedit's readline() takes the
 * settings it finds as the ones to restore, so *cooked keeps the user's,
 * for after the line. Returns whether it changed anything. */
static bool hold_keys(struct termios *cooked)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, cooked) < 0 || !(cooked->c_lflag & ICANON))
		return false;
	t = *cooked;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	return tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
}

static void history_path(char *buf, size_t len)
{
	char dir[4096];
	sys_user_dir(dir, sizeof(dir), NULL, "XDG_STATE_HOME", ".local/state", "provium");
	if (sys_mkdir_p(dir, 0700, NULL, 0) < 0) {
		buf[0] = 0;
		return;
	}
	snprintf(buf, len, "%s/repl_history", dir);
}

/* vms[name] = every VM of the state not shut down; their count. */
static int add_vms(lua_State *L, int vms)
{
	int count = 0;
	/* provium.vm_list: every VM of the state, in creation order */
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vm_list");
	lua_Unsigned n = lua_rawlen(L, -1);
	for (lua_Unsigned i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i);
		if (lua_getfield(L, -1, "state") == LUA_TSTRING && strcmp(lua_tostring(L, -1), "shutdown") != 0 &&
		    lua_getfield(L, -2, "name") == LUA_TSTRING) {
			lua_pushvalue(L, -3);
			lua_setfield(L, vms, lua_tostring(L, -2));
			count++;
			lua_pop(L, 1);
		}
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
	return count;
}

void repl_enter(lua_State *L, int vars, const char *banner)
{
	struct sigaction sa = { .sa_handler = on_int }, old_int;
	pid_t prev_fg;
	char hist[4200], *pending = NULL;
	int top = lua_gettop(L);
	bool plain = plain_terminal();

	if (vars)
		vars = lua_absindex(L, vars);
	if (!isatty(STDIN_FILENO)) {
		luaL_error(L, "the prompt needs a terminal on stdin");
		return;
	}
	/* the environment: the globals, the given names, the VMs */
	lua_newtable(L);
	int env = lua_gettop(L);
	lua_newtable(L);
	lua_pushglobaltable(L);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, env);
	lua_pushcfunction(L, repl_print);
	lua_setfield(L, env, "print");
	lua_newtable(L);
	int vms = lua_gettop(L);
	int count = add_vms(L, vms);
	lua_pushvalue(L, vms);
	lua_setfield(L, env, "vms");
	if (vars) {
		lua_pushnil(L);
		while (lua_next(L, vars)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, env);
		}
	}
	if (count == 1) { /* not given: the file's only VM is `vm` */
		lua_pushliteral(L, "vm");
		if (lua_rawget(L, env) == LUA_TNIL) {
			lua_pushnil(L);
			lua_next(L, vms);
			lua_setfield(L, env, "vm");
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	lua_pushvalue(L, env);
	env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	CL = L;

	/* the terminal: ours until the prompt ends */
	signal(SIGTTOU, SIG_IGN);
	prev_fg = tcgetpgrp(STDIN_FILENO);
	if (tcsetpgrp(STDIN_FILENO, getpgrp()) < 0)
		prev_fg = -1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);

	rl_readline_name = "provium";
	if (!plain)
		rl_initialize(); /* libedit keeps the terminal's settings from here */
	rl_attempted_completion_function = complete;
	rl_completer_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";
	using_history();
	stifle_history(1000);
	history_path(hist, sizeof(hist));
	if (hist[0])
		read_history(hist);
	if (banner)
		fprintf(stdout, "%s\n", banner);
	if (plain)
		fprintf(stdout, "(TERM=%s: plain lines, no completion or history keys)\n",
			getenv("TERM") ? getenv("TERM") : "");
	fflush(stdout);
	for (;;) {
		got_int = 0;
		const char *prompt = pending ? ">> " : "provium> ";
		struct termios cooked;
		char *line;
		if (plain) {
			line = plain_readline(prompt);
		} else {
			bool held = hold_keys(&cooked);
			line = readline(prompt);
			if (held)
				tcsetattr(STDIN_FILENO, TCSANOW, &cooked);
		}
		if (got_int) {
			/* ^C at the prompt: a fresh prompt, the pending lines dropped */
			free(line);
			free(pending);
			pending = NULL;
			fputs(plain ? "\n" : "^C\n", stdout); /* a cooked terminal echoed it */
			fflush(stdout);
			continue;
		}
		if (!line) {
			fputc('\n', stdout);
			break;
		}
		if (!pending && !strcmp(line, ".continue")) {
			free(line);
			break;
		}
		if (*line)
			add_history(line);
		if (pending) {
			size_t a = strlen(pending), b = strlen(line);
			char *p = realloc(pending, a + b + 2);
			if (!p) {
				free(line);
				continue;
			}
			pending = p;
			pending[a] = '\n';
			memcpy(pending + a + 1, line, b + 1);
			free(line);
		} else {
			pending = line;
		}
		int rc = load_line(L, pending);
		lua_pop(L, rc == 1 ? 0 : 1);
		if (rc == 1)
			continue; /* more lines to come */
		eval(L, pending);
		free(pending);
		pending = NULL;
	}
	free(pending);
	if (hist[0])
		write_history(hist);
	sigaction(SIGINT, &old_int, NULL);
	if (prev_fg > 0)
		tcsetpgrp(STDIN_FILENO, prev_fg);
	luaL_unref(L, LUA_REGISTRYINDEX, env_ref);
	env_ref = LUA_NOREF;
	CL = NULL;
	lua_settop(L, top);
}

/* ---- t:pause ------------------------------------------------------------------ */

/* t:pause([vars [, message]]): under provium repl/shell or --debug, the prompt with the
 * file's VMs (and vars' names); otherwise a line in the test's log. The
 * test's clock stops meanwhile. */
static int t_pause(lua_State *L)
{
	char where[300] = "?";

	luaL_checktype(L, 1, LUA_TTABLE);
	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TTABLE);
	const char *message = luaL_optstring(L, 3, NULL);
	runner_where(L, where, sizeof(where));
	if (!enabled) {
		char msg[400];
		snprintf(msg, sizeof(msg), "t:pause() at %s passed over: run with --debug (or provium shell) to stop there",
			 where);
		runner_log(msg);
		return 0;
	}
	uint64_t left = tclock_pause();
	lua_getfield(L, 1, "name");
	if (message)
		lua_pushstring(L, message);
	else
		lua_pushfstring(L, "provium: paused at %s in test '%s'. The file's VMs are in `vms` (and `vm` if only one);\n"
				   "Tab completes, ^C interrupts, ^D or .continue goes on with the test.",
				where, lua_tostring(L, -1));
	repl_enter(L, lua_isnoneornil(L, 2) ? 0 : 2, lua_tostring(L, -1));
	tclock_resume(left);
	return 0;
}

void repl_install(lua_State *L)
{
	luaL_getmetatable(L, "provium.test");
	lua_getfield(L, -1, "__index");
	lua_pushcfunction(L, t_pause);
	lua_setfield(L, -2, "pause");
	lua_pop(L, 2);
}
