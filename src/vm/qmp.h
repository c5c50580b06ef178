/* qmp.h - a minimal synchronous QMP client (QEMU Machine Protocol, JSON over a
 * unix socket), built on jansson.
 *
 * Protocol: qmp_connect() reads the greeting and negotiates capabilities;
 * qmp_exec() sends one command and waits, until the deadline, for its return
 * or error (events arriving meanwhile are kept in the event list, newest last);
 * qmp_close(). Every wait is bounded by a deadline and says what it waited for.
 */
#ifndef PV_QMP_H
#define PV_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

struct qmp {
	int fd;
	struct pv_buf in;
	json_t *events; /* array of received events */
};

/* deadline: CLOCK_MONOTONIC ns. */
int qmp_connect(struct qmp *q, const char *path, uint64_t deadline, struct pv_err *err);
/* args may be NULL; consumed (decref'd). On success *ret (if non-NULL) holds
 * the "return" value (new reference). A QMP error is -EIO with its desc. */
int qmp_exec(struct qmp *q, const char *cmd, json_t *args, json_t **ret, uint64_t deadline, struct pv_err *err);
/* Sends cmd with an fd attached (SCM_RIGHTS), e.g. getfd. */
int qmp_exec_fd(struct qmp *q, const char *cmd, json_t *args, int fd, uint64_t deadline, struct pv_err *err);
/* The decoding half of qmp_exec, without I/O (the fuzz target's entry):
 * handles the lines buffered in q->in as replies awaited for cmd. Returns
 * -EAGAIN when no reply is complete yet (events met meanwhile are kept), 0
 * for a return (*ret as in qmp_exec), -EIO for an error reply, -EBADMSG for
 * a line that is not JSON, -EMSGSIZE for a line over QMP_MAX_LINE. */
#define QMP_MAX_LINE (16u * 1024u * 1024u)
int qmp_parse_reply(struct qmp *q, const char *cmd, json_t **ret, struct pv_err *err);
/* Removes the oldest received event named name; false if there is none. */
bool qmp_take_event(struct qmp *q, const char *name);
/* Waits for an event named `name` (already received ones count). */
int qmp_wait_event(struct qmp *q, const char *name, uint64_t deadline, struct pv_err *err);
void qmp_close(struct qmp *q);

uint64_t pv_mono_ns(void);
struct sockaddr_un;
/* connect() to a unix socket that QEMU has bound but may not be listening on
 * yet: ECONNREFUSED is retried every millisecond until deadline. 0, or -1
 * with errno set. */
int pv_connect_listening(int fd, const struct sockaddr_un *sa, uint64_t deadline);

#endif
