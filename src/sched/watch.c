/* watch.c - the --watch pause (watch.h). */
#include "watch.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

struct watch {
	int result, signo;
	ev_io changes, interrupt;
	ev_timer quiet;
};

static void watch_tree(int ifd, const char *dir, int depth)
{
	DIR *d;
	struct dirent *e;
	if (depth > 32 || inotify_add_watch(ifd, dir, IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM) < 0)
		return;
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			watch_tree(ifd, p, depth + 1);
	}
	closedir(d);
}

static void on_change(struct ev_loop *loop, ev_io *w, int revents)
{
	struct watch *wt = w->data;
	char buf[8192];
	(void)revents;
	while (read(w->fd, buf, sizeof(buf)) > 0)
		;
	ev_timer_again(loop, &wt->quiet); /* quiet is counted from the last change */
}

static void on_quiet(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct watch *wt = w->data;
	(void)revents;
	wt->result = 1;
	ev_break(loop, EVBREAK_ONE);
}

static void on_interrupt(struct ev_loop *loop, ev_io *w, int revents)
{
	struct watch *wt = w->data;
	struct signalfd_siginfo si;
	(void)revents;
	if (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		wt->signo = (int)si.ssi_signo;
	wt->result = 0;
	ev_break(loop, EVBREAK_ONE);
}

int watch_wait(struct ev_loop *loop, char **roots, size_t nroots, int sfd, int *signo)
{
	struct watch wt = { 0 };
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

	*signo = 0;
	if (ifd < 0)
		return 0;
	for (size_t i = 0; i < nroots; i++)
		watch_tree(ifd, roots[i], 0);
	ev_io_init(&wt.changes, on_change, ifd, EV_READ);
	ev_timer_init(&wt.quiet, on_quiet, 0., WATCH_QUIET_MS / 1000.);
	wt.changes.data = wt.quiet.data = wt.interrupt.data = &wt;
	ev_io_start(loop, &wt.changes);
	if (sfd >= 0) {
		ev_io_init(&wt.interrupt, on_interrupt, sfd, EV_READ);
		ev_io_start(loop, &wt.interrupt);
	}
	ev_run(loop, 0);
	ev_io_stop(loop, &wt.changes);
	ev_io_stop(loop, &wt.interrupt);
	ev_timer_stop(loop, &wt.quiet);
	close(ifd);
	*signo = wt.signo;
	return wt.result;
}
