/* sys.h - small OS helpers shared by the host processes and the guest
 * agent, each written once: the monotonic clock, reading a whole file, and
 * removing a directory tree.
 *
 * Errors are negative errno; nothing here prints. */
#ifndef PV_SYS_H
#define PV_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in nanoseconds: for deadlines and durations, never for
 * wall-clock timestamps. */
uint64_t sys_mono_ns(void);

/* mkdir -p with mode for every directory it makes; existing directories are
 * fine. On failure, -errno and (if `where` is not NULL) the prefix that could
 * not be made. */
int sys_mkdir_p(const char *path, unsigned mode, char *where, size_t wherelen);

/* A per-user directory by the XDG base directory rule: $override_env if
 * set and not empty, else $xdg_env/sub if it is absolute, else
 * $HOME/home_rel/sub (without HOME: /root for root, else /tmp). */
void sys_user_dir(char *buf, size_t len, const char *override_env, const char *xdg_env, const char *home_rel,
		  const char *sub);

/* Copies what is left of ifd to ofd: copy_file_range, else read/write. */
int sys_copy_fd(int ifd, int ofd);
/* Starts argv (execvp) as a helper process of this one: stdin and stdout
 * /dev/null, stderr appended to log (truncated first), fd keep_fd (or -1)
 * inherited, its own process group (a ^C at the terminal reaches only us,
 * which ends the helper in order), and SIGKILL when this thread dies. The
 * pid, or -errno. An exec failure is its exit status 127 and a line in log. */
pid_t sys_spawn(char *const argv[], const char *log, int keep_fd);
/* Ends child pid: sends sig (none when 0), waits up to timeout_ns for it to
 * exit, then SIGKILLs it; reaps it either way. */
void sys_end_child(pid_t pid, int sig, uint64_t timeout_ns);
/* The last len - 1 bytes of the file at path (a log, for an error message),
 * trailing newlines and spaces cut; "" when it cannot be read. */
void sys_file_tail(const char *path, char *out, size_t len);
/* Copies the regular file src to dst (created 0600, or truncated) keeping
 * its holes: only src's data extents (SEEK_DATA/SEEK_HOLE) are copied, dst
 * gets src's size. *allocated (may be NULL): the bytes copied. 0 or -errno. */
int sys_copy_sparse(const char *src, const char *dst, uint64_t *allocated);
/* Copies the regular file src to dst (created 0644 or truncated). */
int sys_copy_file(const char *src, const char *dst);

/* Reads fd to its end into a malloc'd buffer, NUL-terminated (not counted
 * in *ret_len), retrying EINTR. More than `max` bytes is -EFBIG (nothing
 * returned). *ret and *ret_len are written only on success. */
int sys_read_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* sys_read_fd() of a path opened O_RDONLY|O_CLOEXEC. */
int sys_read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/* Removes path and everything below it, without following symlinks; an
 * absent path is 0. Removes as much as it can; on failure returns the first
 * -errno and, if `where` is not NULL, copies the path that failed into it.
 * Not reentrant (nftw has no user pointer): one call at a time per thread. */
int sys_rm_tree(const char *path, char *where, size_t wherelen);

#endif
