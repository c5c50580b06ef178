/* since.h - --since REF: the test files that changed since a git ref, or
 * since a file was last modified (docs/cli.md, "--since").
 *
 * REF is a file when a file of that name exists: then "changed" is "modified
 * after it" (mtime strictly newer, to the nanosecond). Otherwise it is a git
 * revision of the repository of each root: a path is changed when
 * `git diff --name-only REF` names it (REF against the working tree, staged
 * changes included) or it is untracked and not ignored (`git ls-files
 * --others --exclude-standard`).
 *
 * A test file counts as changed when it, or a file it depends on through
 * literal references (the static scan, scan.h), changed: the helpers it
 * require()s (found as package.path finds them, and theirs, transitively),
 * the *.fixture.lua files of its vm_fixture / lab_fixture references (and
 * what those depend on in turn), and the host files of its push_file /
 * depends_on_file calls. */
#ifndef PV_SINCE_H
#define PV_SINCE_H

#include <stdbool.h>
#include <stddef.h>

#include "discover.h"
#include "err.h"

/* keep[i] = whether d->files[i] changed since ref. 0, or -errno with err
 * set (without a "--since REF: " prefix): ref is neither a file nor a git
 * revision of a root's repository (git's own words in parentheses), a root
 * is not in a git repository, or git cannot be run. */
int since_changed(const char *ref, const char *const *roots, size_t nroots, const struct pv_discovery *d,
		  bool *keep, struct pv_err *err);

#endif
