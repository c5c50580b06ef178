/* rio.c - the runner's I/O loop thread (contract in rio.h). */
#include "rio.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>

static struct {
	pthread_mutex_t lock;
	pthread_cond_t done;
	pthread_t thread;
	bool started;
	struct ev_loop *loop;
	ev_async wake;
	/* the one call in flight (the Lua thread is the only caller) */
	int (*fn)(void *, struct pv_err *);
	void *arg;
	struct pv_err *err;
	int rc;
	bool pending, stopping;
} rio = { .lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER };

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)w;
	(void)revents;
	pthread_mutex_lock(&rio.lock);
	if (rio.pending) {
		rio.rc = rio.fn(rio.arg, rio.err);
		rio.pending = false;
		pthread_cond_broadcast(&rio.done);
	}
	if (rio.stopping)
		ev_break(loop, EVBREAK_ALL);
	pthread_mutex_unlock(&rio.lock);
}

static void *run(void *unused)
{
	(void)unused;
	ev_run(rio.loop, 0);
	return NULL;
}

static int start(struct pv_err *err)
{
	sigset_t all, old;
	int rc;
	rio.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!rio.loop)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "cannot make the runner's I/O loop");
	ev_async_init(&rio.wake, on_wake);
	ev_async_start(rio.loop, &rio.wake);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&rio.thread, NULL, run, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		ev_loop_destroy(rio.loop);
		rio.loop = NULL;
		return pv_err_set(err, -rc, SIZE_MAX, "cannot start the runner's I/O thread: %s", strerror(rc));
	}
	rio.started = true;
	return 0;
}

int rio_call(int (*fn)(void *arg, struct pv_err *err), void *arg, struct pv_err *err)
{
	int rc;
	if (rio.started && pthread_equal(pthread_self(), rio.thread))
		return fn(arg, err);
	pthread_mutex_lock(&rio.lock);
	if (!rio.started && (rc = start(err)) < 0) {
		pthread_mutex_unlock(&rio.lock);
		return rc;
	}
	rio.fn = fn;
	rio.arg = arg;
	rio.err = err;
	rio.pending = true;
	ev_async_send(rio.loop, &rio.wake);
	while (rio.pending)
		pthread_cond_wait(&rio.done, &rio.lock);
	rc = rio.rc;
	pthread_mutex_unlock(&rio.lock);
	return rc;
}

struct ev_loop *rio_loop(void) { return rio.loop; }

void rio_stop(void)
{
	pthread_mutex_lock(&rio.lock);
	if (!rio.started) {
		pthread_mutex_unlock(&rio.lock);
		return;
	}
	rio.stopping = true;
	ev_async_send(rio.loop, &rio.wake);
	pthread_mutex_unlock(&rio.lock);
	pthread_join(rio.thread, NULL);
	rio.started = false;
	rio.stopping = false;
}
