/* dimage.h - guest roots built from Debian packages: the images of profiles
 * with base = "debian" (docs/images.md).
 *
 * An image is DIR/debian-<key>/ (DIR: vm_image_dir, the built-in image's), where
 * key hashes the recipe: base, suite, the apt sources it is built from,
 * init, and the sorted package list. It holds root.squashfs (the root file
 * system, lz4, attached read-only; the guest writes to a tmpfs overlay),
 * packages.txt (every installed package=version, as resolved by the build)
 * and manifest.json. The image's id, which fixture keys hash, is the key
 * plus a hash of packages.txt: a rebuild that resolves other versions is
 * another image. Builds run mmdebstrap (root mode as root, unshare mode
 * otherwise) with a customize hook that records the versions and makes the
 * squashfs with mksquashfs; one build per key at a time (flock), published by
 * rename, so a killed build leaves nothing a run would use. */
#ifndef PV_DIMAGE_H
#define PV_DIMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "err.h"

struct dimage {
	char key[17];   /* the recipe's hash, hex */
	char dir[4096]; /* DIR/debian-<key> */
	char root[4200]; /* dir/root.squashfs */
	char id[40];    /* when built: key-<versions hash> */
	uint64_t bytes; /* when built: root.squashfs's size */
	unsigned npackages; /* when built: packages installed */
};

/* The image of profile p (p->base set): fills key, dir and root; returns
 * true when it is built (then id, bytes and npackages too). */
bool dimage_find(const struct pv_profile *p, struct dimage *d);
/* Builds p's image unless it is built (force: anew). Progress lines
 * ("provium: image NAME: ...") go to progress. 0, or -errno with err saying
 * what failed (mmdebstrap's own error lines, e.g. an unknown package). */
int dimage_build(const struct pv_profile *p, bool force, FILE *progress, struct pv_err *err);

#endif
