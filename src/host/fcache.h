/* fcache.h - the on-disk fixture cache store.
 *
 * A fixture is a set of VM snapshots cached on disk. Each entry is a directory
 * <dir>/<key>/ holding manifest.json plus one (already compressed) snapshot
 * file per VM; <key> is 32 lowercase hex digits (XXH3-128 of everything the
 * fixture depends on, built with fc_hash_*).
 *
 * Layout of <dir>:
 *   <key>/                 a complete entry (appears atomically, by rename)
 *   <key>.tmp.<pid>[.*]    an entry being written (or removed) by process pid
 *   <key>.lock             the build lock (flock), holding "<holder>\n<pid>\n"
 *
 * Last use is the atime of <key>/manifest.json, set explicitly by fc_touch
 * (reads by this module never change it), and drives LRU eviction.
 *
 * Every function that can fail returns a negative errno and describes the
 * failure in err (when non-NULL); none prints.
 */
#ifndef PV_FCACHE_H
#define PV_FCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xxhash.h>

#include "err.h"

#define FC_KEY_LEN 32
#define FC_FORMAT 1 /* manifest.json "format" */

/* Hashing: each item is fed as a type byte, the length-prefixed tag and the
 * length-prefixed value (lengths as 64-bit little endian), so ("a", "bc") and
 * ("ab", "c") differ, and so do a string, bytes and a u64 with equal bytes. */
struct fc_hash {
	XXH3_state_t *st;
};
/* -ENOMEM on failure. */
int fc_hash_init(struct fc_hash *h);
/* s may be NULL (hashed differently from ""). */
void fc_hash_str(struct fc_hash *h, const char *tag, const char *s);
void fc_hash_bytes(struct fc_hash *h, const char *tag, const void *p, size_t n);
void fc_hash_u64(struct fc_hash *h, const char *tag, uint64_t v);
/* Writes the key (lowercase hex, NUL-terminated) and frees the state. */
void fc_hash_final(struct fc_hash *h, char out[FC_KEY_LEN + 1]);

/* True if s is exactly FC_KEY_LEN lowercase hex digits. */
bool fc_key_valid(const char *s);

/* The cache directory: flag, else $PROVIUM_CACHE_DIR, else config_value, else
 * $XDG_CACHE_HOME/provium/fixtures, else $HOME/.cache/provium/fixtures. An empty
 * environment variable counts as unset, and (as the XDG spec says) so does a
 * relative $XDG_CACHE_HOME; an empty flag or config value is an error. Relative
 * paths are made absolute against the cwd ("." and ".." components and
 * repeated slashes are folded lexically, symlinks are not resolved). Creates
 * it (mkdir -p, mode 0700 for every directory it creates) and, if it already
 * existed, leaves its mode alone; it must be a writable directory. The error
 * names the path and the source it came from. */
int fc_resolve_dir(const char *flag, const char *config_value, char *out, size_t len, struct pv_err *err);

struct fc_vm {
	char name[128], profile[128];
	uint64_t memory; /* bytes */
	uint32_t cpus;
	bool kvm;
	char file[160];  /* file name inside the entry dir */
	uint64_t bytes;  /* its size */
};
#define FC_MAX_VMS 64
struct fc_manifest {
	char fixture[1024]; /* root-relative fixture path without .fixture.lua */
	char key[FC_KEY_LEN + 1];
	bool lab;              /* built from provium:snapshot() (several VMs by name) vs vm:snapshot() */
	uint64_t created_unix; /* seconds */
	uint64_t build_ns;
	size_t nvms;
	struct fc_vm vms[FC_MAX_VMS];
};

/* The manifest.json reader alone, on its bytes (fc_lookup's decoder and the
 * fuzz target's entry): 0 with *m filled, or -EBADMSG with err saying what
 * is wrong ("manifest.json: vms[0]: \"cpus\" is missing"), *m zeroed. key
 * is the entry's name, which the manifest must repeat. */
int fc_manifest_parse(const char *buf, size_t len, const char *key, struct fc_manifest *m, struct pv_err *err);

/* 1: entry present and valid (manifest parses, format version matches, key
 *    matches, every VM file exists with the recorded size) and *m is filled;
 * 0: no entry;
 * negative: the entry exists but is corrupt (-EBADMSG) or unreadable (-errno);
 *    err says exactly what, e.g. "<dir>/<key>: a.zst: missing". *m is zeroed.
 * Does not change the entry's last-use time. */
int fc_lookup(const char *dir, const char *key, struct fc_manifest *m, struct pv_err *err);
/* Records a use now: atime of manifest.json := now, mtime unchanged. Best effort. */
void fc_touch(const char *dir, const char *key);
/* Removes the entry directory recursively (renaming it aside first, so a
 * half-removed entry never looks corrupt); 0 if absent. Leaves <key>.lock. */
int fc_remove(const char *dir, const char *key, struct pv_err *err);
/* Sum of the entry's files' sizes (st_size); 0 if absent. */
uint64_t fc_entry_bytes(const char *dir, const char *key);

/* Writing an entry: everything goes into <dir>/<key>.tmp.<pid>/ first. Hold the
 * build lock (fc_lock_*) while writing. */
struct fc_writer {
	char dir[4096], key[FC_KEY_LEN + 1], tmp[4200];
	bool open;
};
/* Creates the tmp dir (replacing a leftover of this pid). */
int fc_begin(const char *dir, const char *key, struct fc_writer *w, struct pv_err *err);
/* Moves src into the tmp dir as `name` (mode 0600): rename(2) if possible, else
 * copy (copy_file_range, falling back to read/write) then unlink src. Reports
 * the resulting size in *bytes (may be NULL). A full disk (ENOSPC, EDQUOT)
 * gives an error naming the cache dir and saying to free space or lower
 * cache_max_size; the partial copy is removed. name must be a plain file
 * name (no '/', no "..", not "manifest.json") and not already added. */
int fc_add_file(struct fc_writer *w, const char *src, const char *name, uint64_t *bytes, struct pv_err *err);
/* Writes manifest.json (format 1; the key is w->key, m->key must be empty or
 * equal), checking every VM file was added with the recorded size; fsyncs the
 * files and the tmp dir, renames tmp -> <dir>/<key>, fsyncs <dir>. If
 * <dir>/<key> already exists (a peer won), the tmp dir is removed and this
 * succeeds. On any failure the tmp dir is removed and the error says why. The
 * writer is closed either way. */
int fc_commit(struct fc_writer *w, const struct fc_manifest *m, struct pv_err *err);
/* Removes the tmp dir; safe after commit or twice. */
void fc_abort(struct fc_writer *w);

/* Build lock: flock(2) on <dir>/<key>.lock. The holder writes a one-line
 * description of itself into the file ("<holder>\n<pid>\n"). A lock file
 * unlinked by eviction while someone waited on it is detected (inode check)
 * and the lock retaken on the new file. */
struct fc_lock {
	int fd;
};
/* 1: acquired (holder recorded); 0: held by another open file description -
 * held_by (may be NULL) gets the recorded holder line, or "another provium
 * process" if empty/unreadable; negative: error. l->fd is -1 unless 1. */
int fc_lock_try(const char *dir, const char *key, const char *holder, struct fc_lock *l, char *held_by, size_t len,
		struct pv_err *err);
/* Blocks until acquired (retrying EINTR), then records holder. */
int fc_lock_wait(const char *dir, const char *key, const char *holder, struct fc_lock *l, struct pv_err *err);
/* Truncates the holder text and closes; leaves the lock file. Safe twice. */
void fc_unlock(struct fc_lock *l);

/* Maintenance. */
struct fc_info {
	char key[FC_KEY_LEN + 1];
	char fixture[1024];
	uint64_t bytes;
	int64_t created, last_used; /* unix seconds */
	bool corrupt;
};
/* Every entry (dirs named by a 32-hex key), sorted by last_used descending
 * (then key). Corrupt entries are listed with corrupt=true and fixture "?".
 * *out is malloc'd (NULL when *n is 0); free() it. */
int fc_list(const char *dir, struct fc_info **out, size_t *n, struct pv_err *err);
/* Start-up housekeeping: removes leftover <key>.tmp.<pid>[.*] dirs whose pid is
 * not alive (kill(pid, 0) fails with ESRCH); then, while the total of all
 * entries exceeds cap, removes the least recently used entry whose lock is not
 * held (held ones are skipped), together with its lock file. Reports how many
 * entries and bytes (entries and leftovers) were removed; either pointer may
 * be NULL. */
int fc_evict(const char *dir, uint64_t cap, size_t *removed, uint64_t *freed, struct pv_err *err);

#endif
