/* scan.h - the static scan of a test or fixture file: what it declares
 * before it runs (tests and their literal meta, provium:claim{}, fixture
 * references, literal require()s), read from the source text without running
 * it, for discovery, `provium list` and fixture keys. */
#ifndef PV_SCAN_H
#define PV_SCAN_H

#include <stddef.h>

#include "discover.h"
#include "err.h"

/* Scans one file's source text into f's declared fields. Fails only on a
 * literal claim that is plainly wrong (err says where). */
int pv_scan_source(const char *src, size_t len, struct pv_test_file *f, struct pv_err *err);
/* Frees what pv_scan_source filled in (fixture_refs, requires). */
void pv_test_file_release(struct pv_test_file *f);

#endif
