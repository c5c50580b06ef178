/* dserver.h - the disk server behind a faultable disk: one nbdkit process
 * serving one raw file through provium-nbd.so (src/disk/nbd_plugin.c), which
 * holds the guest's unflushed writes and the disk's fault rules.
 *
 * dserver_start spawns (sys_spawn: killed when this process dies) `nbdkit -f -U SOCK provium-nbd.so
 * file=FILE control=FD seed=N` (stderr to FILE.nbdkit.log) and returns once
 * it listens on SOCK, which QEMU's nbd block driver then connects to, once
 * per boot. The server outlives boots; dserver_stop ends it, and it ends by
 * itself when this process does. dserver_cmd sends one control line (the
 * plugin's header lists them) and returns the text after "ok".
 *
 * The plugin is found at $PROVIUM_NBD_PLUGIN, else next to the running
 * binary (build/provium-nbd.so). */
#ifndef PV_DSERVER_H
#define PV_DSERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct dserver {
	pid_t pid;      /* 0: not running */
	int ctl;        /* the control socket */
	char sock[108]; /* the NBD socket QEMU connects to */
	char log[4200]; /* nbdkit's stderr */
};

/* Starts a server for file; sock_dir holds its socket (a short path: at
 * most ~90 bytes, else /tmp is used). 0, or -errno with err set. */
int dserver_start(struct dserver *s, const char *file, const char *sock_dir, uint64_t seed, struct pv_err *err);
/* Sends line (no newline); the answer after "ok" into reply. 0, -EREMOTEIO
 * for an "err" answer (err holds it), or another -errno when the server is gone. */
int dserver_cmd(struct dserver *s, const char *line, char *reply, size_t reply_len, struct pv_err *err);
/* Ends the server: it commits what its client left unflushed unless cut. */
void dserver_stop(struct dserver *s);

#endif
