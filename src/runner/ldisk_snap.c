/* ldisk_snap.c - disks in snapshots and fixtures (contract in ldisk.h): a
 * snapshot copies each disk's file while QEMU is stopped, and a restore or
 * a fixture resume gives the VM private copies of those. */
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ldisk.h"
#include "lvm.h"
#include "sys.h"

void ldisk_check_snapshot(lua_State *L, struct lvm *v, const char *op)
{
	for (unsigned k = 0; k < v->disks.n; k++) {
		const struct ldisk *d = &v->disks.d[k];
		if (d->writable)
			luaL_error(L, "%s of VM '%s' refused: disk \"%s\" is its image written in place (writable = true), "
				      "which a snapshot cannot give back; drop writable (the guest's writes then go to a "
				      "copy-on-write overlay)", op, v->name, d->id);
		if (d->port >= 0)
			luaL_error(L, "%s of VM '%s' refused: disk \"%s\" was hot-plugged (vm:attach_disk), and a resumed "
				      "QEMU could not plug it back where it was; give it in provium:vm's disks", op, v->name,
				   d->id);
	}
}

void ldisk_saved_remove(struct ldisks_saved *s)
{
	for (unsigned k = 0; k < s->n; k++)
		if (s->d[k].copy[0]) {
			unlink(s->d[k].copy);
			s->d[k].copy[0] = 0;
		}
}

int ldisk_save(struct lvm *v, const char *base, struct ldisks_saved *out, struct pv_err *err)
{
	memset(out, 0, sizeof(*out));
	out->hotplug = v->disks.hotplug;
	for (unsigned k = 0; k < v->disks.n; k++) {
		const struct ldisk *d = &v->disks.d[k];
		struct ldisk_saved *s = &out->d[out->n];
		if (d->detached)
			continue; /* in no QEMU: nor in its snapshots */
		memcpy(s->id, d->id, sizeof(s->id));
		s->size = d->size;
		s->seed = d->seed;
		memcpy(s->format, d->format, sizeof(s->format));
		memcpy(s->image, d->image, sizeof(s->image));
		memcpy(s->image_format, d->image_format, sizeof(s->image_format));
		s->readonly = d->readonly;
		s->mediated = d->mediated;
		s->scsi = d->scsi;
		out->n++;
		if (d->readonly)
			continue; /* the image itself, which nobody writes */
		snprintf(s->copy, sizeof(s->copy), "%s.disk%u", base, k);
		int rc = sys_copy_sparse(d->path, s->copy, &s->bytes);
		if (rc < 0) {
			s->copy[0] = 0;
			ldisk_saved_remove(out);
			return pv_err_set(err, rc, SIZE_MAX, "copying disk \"%s\" (%s) into the snapshot: %s", d->id, d->path,
					  strerror(-rc));
		}
	}
	return 0;
}

/* v's disks in its QEMU (not detached), in order, into idx; their number. */
static unsigned present(struct lvm *v, unsigned *idx)
{
	unsigned n = 0;
	for (unsigned k = 0; k < v->disks.n; k++)
		if (!v->disks.d[k].detached)
			idx[n++] = k;
	return n;
}

void ldisk_check_restore(lua_State *L, struct lvm *v, const struct ldisks_saved *s)
{
	unsigned idx[VM_MAX_DISKS], n = present(v, idx);
	if (n != s->n)
		luaL_error(L, "VM '%s' has %d disks, the snapshot %d", v->name, (int)n, (int)s->n);
	for (unsigned j = 0; j < s->n; j++) {
		const struct ldisk *d = &v->disks.d[idx[j]];
		if (strcmp(d->id, s->d[j].id) || d->size != s->d[j].size)
			luaL_error(L, "VM '%s': its disk %d is \"%s\" of %I bytes, the snapshot's \"%s\" of %I", v->name,
				   (int)j + 1, d->id, (lua_Integer)d->size, s->d[j].id, (lua_Integer)s->d[j].size);
	}
}

int ldisk_load(struct lvm *v, const struct ldisks_saved *s, struct pv_err *err)
{
	bool fresh = v->disks.n == 0;
	unsigned idx[VM_MAX_DISKS];
	if (fresh) {
		v->disks.hotplug = s->hotplug;
		v->disks.n = s->n;
		for (unsigned k = 0; k < s->n; k++)
			idx[k] = k;
	} else {
		present(v, idx);
	}
	for (unsigned k = 0; k < s->n; k++) {
		const struct ldisk_saved *sd = &s->d[k];
		struct ldisk *d = &v->disks.d[idx[k]];
		char path[sizeof(d->path)];
		if (fresh) {
			memset(d, 0, sizeof(*d));
			memcpy(d->id, sd->id, sizeof(d->id));
			d->size = sd->size;
			d->seed = sd->seed;
			memcpy(d->format, sd->format, sizeof(d->format));
			memcpy(d->image, sd->image, sizeof(d->image));
			memcpy(d->image_format, sd->image_format, sizeof(d->image_format));
			d->readonly = sd->readonly;
			d->mediated = sd->mediated;
			d->scsi = sd->scsi;
			d->port = -1;
			d->srv.ctl = -1;
		}
		if (!sd->copy[0]) {
			memcpy(d->path, d->image, sizeof(d->image)); /* path is the larger */
			continue;
		}
		if (ldisk_new_path(d, d->format, path, sizeof(path), err) < 0)
			return -EIO;
		int rc = sys_copy_sparse(sd->copy, path, NULL);
		if (rc < 0)
			return pv_err_set(err, rc, SIZE_MAX, "disk \"%s\": copying the snapshot's data (%s) to %s: %s", d->id,
					  sd->copy, path, strerror(-rc));
		/* the old file and its server go; the new one gets a server of its own */
		dserver_stop(&d->srv);
		if (d->path[0])
			unlink(d->path);
		memcpy(d->path, path, sizeof(path));
		if ((rc = ldisk_ready(d, err)) < 0)
			return rc;
	}
	return 0;
}
