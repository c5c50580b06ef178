/* discover.h - finding test files and reading what they declare, without running them.
 *
 * Protocol:
 *   1. struct pv_discovery d; pv_discover(roots, nroots, filter, &d, &err).
 *   2. Use d.files[0..d.nfiles): tests in deterministic order (roots in the
 *      order given, then byte order of the root-relative path).
 *   3. pv_discovery_release(&d).
 *
 * Rules:
 *   - Each root is a directory (searched recursively, following no symlinked
 *     directories, skipping dot-directories) or a single *.test.lua file (its
 *     root is then its parent directory).
 *   - *.test.lua files are tests; *.fixture.lua are fixtures (listed in
 *     d.fixtures, never run); other *.lua are helpers for require().
 *   - rel_path is relative to its root, with forward slashes.
 *   - filter (may be NULL): keep only tests whose rel_path contains it.
 *   - A root that does not exist or cannot be read is an error naming it.
 *   - The same file reached through two roots is listed once (first root wins).
 *   - Every name discovery hands out is valid UTF-8, because events carry it
 *     as text: a test or fixture file whose root-relative path is not UTF-8
 *     (after --filter) is an error (-EILSEQ) naming it, escaped. Rejected,
 *     not escaped into the events: an escaped name is not the file's name
 *     (two names could escape alike, consumers could not open it).
 *     Helpers and directories without tests are never named, so any bytes do.
 *
 * Static scan (source text, Lua comments and strings honoured so commented-out
 * calls do not count):
 *   - fixture_refs: literal string arguments of vm_fixture("...") and
 *     lab_fixture("...") (also provium.vm_fixture / provium:vm_fixture forms),
 *     in source order, duplicates removed, ".fixture.lua" stripped if present.
 *   - requires: literal string arguments of require("...") / require "...", in
 *     source order, duplicates removed (fixture cache keys hash the helpers).
 *   - file_deps: literal first arguments of x:push_file("...") and
 *     x:depends_on_file("...") (host files, relative to the scanned file's
 *     directory unless absolute), source order, duplicates removed: fixture
 *     cache keys hash their contents.
 *   - image_deps: literal values of `image = "..."` fields (a disk's image
 *     in provium:vm's disks), same rules: fixture cache keys hash their
 *     identity (path, size, mtime), not their bytes.
 *   - declared_claim: a literal `provium:claim{ memory = SIZE, cpus = N }` (or
 *     with parentheses) at file scope, i.e. not inside a function body. SIZE
 *     is a number of bytes or a size string ("512M", "2G"; see pv_parse_size).
 *     A claim whose arguments are not literals is left undeclared (the runner
 *     then asks the scheduler at run time).
 *   - A literal fixture reference that is not valid UTF-8 is an error
 *     (-EILSEQ) naming its line: file_discovered carries the references.
 */
#ifndef PV_DISCOVER_H
#define PV_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "event.h"

struct pv_test_file {
	char *root;      /* the root directory it was found under (as given) */
	char *rel_path;  /* root-relative, forward slashes */
	char *abs_path;  /* openable path (root + "/" + rel_path) */
	char **fixture_refs;
	size_t nfixture_refs;
	char **requires; /* literal require("x") / require "x" arguments, source order */
	size_t nrequires;
	char **file_deps; /* literal first arguments of :push_file("x") / :depends_on_file("x"), source order */
	size_t nfile_deps;
	char **image_deps; /* literal values of `image = "x"` (disk images), source order */
	size_t nimage_deps;
	bool has_claim;
	struct pv_resource claim;
	/* --rerun-failed: the only tests of the file that run (malloc'd, like
	 * the strings); none: all of them. Not set by pv_discover. */
	char **only;
	size_t nonly;
};

struct pv_discovery {
	struct pv_test_file *files;
	size_t nfiles;
	char **fixtures; /* root-relative fixture paths without .fixture.lua */
	size_t nfixtures;
};

int pv_discover(const char *const *roots, size_t nroots, const char *filter, struct pv_discovery *ret,
		struct pv_err *err);
void pv_discovery_release(struct pv_discovery *d);
/* Keeps the files with keep[i] true (in their order) and releases the
 * others; d->fixtures stays whole. */
void pv_discovery_retain(struct pv_discovery *d, const bool *keep);

/* Writes s[0..len) into out (always NUL-terminated, cut short to fit) for a
 * one-line message: valid UTF-8 stays as is; bytes that are not part of a
 * valid sequence and control characters become \xNN, and \ becomes \\, so
 * the text is unambiguous and printable. Returns out. */
char *pv_escape_name(const char *s, size_t len, char *out, size_t outlen);

#endif
