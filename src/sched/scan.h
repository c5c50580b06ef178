/* scan.h - the static scan of a test or fixture file: what it declares
 * before it runs (tests and their literal meta, provium:claim{}, fixture
 * references, literal require()s), read from the source text without running
 * it, for discovery, `provium list` and fixture keys. */
#ifndef PV_SCAN_H
#define PV_SCAN_H

#include <jansson.h>
#include <stddef.h>

#include "discover.h"
#include "err.h"

/* Scans one file's source text into f's declared fields. Fails only on a
 * literal claim that is plainly wrong (err says where). */
int pv_scan_source(const char *src, size_t len, struct pv_test_file *f, struct pv_err *err);
/* Frees what pv_scan_source filled in (fixture_refs, requires). */
void pv_test_file_release(struct pv_test_file *f);

/* A test() call at file scope (outside any function body; inside an if or
 * a loop too), as the source declares it. */
struct pv_test_decl {
	unsigned line;
	char *name;      /* NULL: not a literal UTF-8 string (computed when the file runs) */
	size_t name_len;
	json_t *meta;    /* the literal fields of its meta table, as JSON (an object; {} without meta) */
	bool meta_computed; /* meta is a variable or a call: its fields are unknown */
	json_t *computed;   /* NULL, or an array of the keys whose values are not literals */
};

/* Every test() call at file scope, in source order: test("name", {meta},
 * fn) or test("name", fn). Meta values: strings (bin that is not UTF-8 as
 * {"$bytes": base64}), integers, floats, booleans, nested literal tables
 * (an array when all fields are positional); a value that is an
 * expression is listed in computed. Fails only out of memory. */
int pv_scan_tests(const char *src, size_t len, struct pv_test_decl **ret, size_t *ret_n, struct pv_err *err);
void pv_test_decls_free(struct pv_test_decl *d, size_t n);

#endif
