#!/usr/bin/python3
"""The agent's raw calls (syscall, syscall_async/await/cancel, ioctl,
read_mem) and workers (worker_spawn/kill/join and the relay), driven over
--stdio like test_agent.py, whose helpers and runner this file uses. Worker
credentials need root; as another user those tests check the refusal.

usage: test_agent_raw.py PATH/TO/provium-agent [TEST...]
"""
import errno
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_agent as ta  # noqa: E402
from test_agent import check, eq, short  # noqa: E402
from test_agent_streams import take  # noqa: E402

TESTS = []
ROOT = os.geteuid() == 0
SYS_read, SYS_close, SYS_pause, SYS_nanosleep, SYS_getpid, SYS_getcwd, SYS_getuid = 0, 3, 34, 35, 39, 79, 102


def test(fn):
    TESTS.append(fn)
    return fn


def others_can_exec(path):
    """Whether a user with no rights of owner or group can exec path."""
    path = os.path.realpath(path)
    if not os.stat(path).st_mode & 0o001:
        return False
    d = os.path.dirname(path)
    while True:
        if not os.stat(d).st_mode & 0o001:
            return False
        if d == '/':
            return True
        d = os.path.dirname(d)


@test
def syscall_plain_and_buffers(A, tmp):
    eq(A.ok('syscall', nr=SYS_getpid)['ret'], A.p.pid, 'getpid runs in the agent')
    r = A.ok('syscall', nr=SYS_close, args=[987654])
    eq((r['ret'], r['errno'], r['out_bufs']), (-1, errno.EBADF, []), 'a failing call is a result')
    r = A.ok('syscall', nr=SYS_getcwd, args=[0, 4096], bufs=[4096], ptrs=[0])
    eq(r['out_bufs'][0][:r['ret'] - 1], os.getcwd().encode(), 'getcwd into a buffer')
    r = A.ok('syscall', nr=SYS_getcwd, args=[0, 3], bufs=[b'xyz'], ptrs=[0])
    eq((r['ret'], r['errno'], r['out_bufs']), (-1, errno.ERANGE, [b'xyz']), 'a buffer given as bytes')


@test
def syscall_bad_requests(A, tmp):
    A.err('syscall', 0, "'nr'")
    A.err('syscall', 0, 'from 0 to 4095', nr=-1)
    A.err('syscall', 0, 'ptrs[0] is not an argument index', nr=SYS_getcwd, bufs=[8], ptrs=[6])
    A.err('syscall', 0, 'already gets', nr=SYS_getcwd, bufs=[8, 8], ptrs=[1, 1])
    A.err('syscall', 0, "needs 'ptrs'", nr=SYS_getcwd, bufs=[8])
    A.err('syscall', 0, "1 entries for 2 buffers", nr=SYS_getcwd, bufs=[8, 8], ptrs=[0])
    A.err('syscall', 0, 'at most 6', nr=SYS_getpid, args=[0] * 7)
    A.err('syscall', 0, 'args[1] is not an integer', nr=SYS_getpid, args=[0, 'x'])
    A.err('syscall', 0, 'more than 64 MiB', nr=SYS_getpid, bufs=[65 << 20], ptrs=[0])


@test
def syscall_timeout_interrupts(A, tmp):
    t0 = time.monotonic()
    r = A.ok('syscall', nr=SYS_pause, timeout_ms=200)
    eq((r['ret'], r['errno'], r['timed_out']), (-1, errno.EINTR, True), 'pause past its timeout')
    check(time.monotonic() - t0 < 5, 'interrupted at its timeout')


@test
def syscall_async_await_cancel(A, tmp):
    c = A.ok('syscall_async', nr=SYS_nanosleep, args=[0, 0], bufs=[struct.pack('<qq', 0, 300 * 10**6)],
             ptrs=[0])['call']
    A.ok('ping')
    r = A.ok('syscall_await', call=c)
    eq((r['ret'], r['errno']), (0, 0), 'nanosleep on its thread')
    A.err('syscall_await', errno.EBADF, 'no such call', call=c)
    c = A.ok('syscall_async', nr=SYS_pause)['call']
    A.err('syscall_await', errno.ETIMEDOUT, 'still running', call=c, timeout_ms=100)
    i = A.request('syscall_await', call=c)
    A.ok('syscall_cancel', call=c)
    ta.expect_err(A.result(i), errno.ECANCELED, 'cancelled', 'the pending await of a cancelled call')
    A.err('syscall_cancel', errno.EBADF, 'no such call', call=c)


@test
def ioctl_and_read_mem(A, tmp):
    p = os.path.join(tmp, 'f')
    with open(p, 'wb') as f:
        f.write(b'hello')
    fh = A.ok('file_open', path=p, read=True)['file']
    r = A.ok('ioctl', file=fh, request=0x541B, data=b'\0' * 4)  # FIONREAD
    eq((r['ret'], struct.unpack('<i', r['data'])[0]), (0, 5), 'FIONREAD on a file handle')
    r = A.ok('ioctl', path=p, request=0x5401, data=b'\0' * 60)  # TCGETS
    eq((r['ret'], r['errno']), (-1, errno.ENOTTY), 'TCGETS on a regular file')
    A.err('ioctl', 0, 'exactly one', request=1)
    A.err('ioctl', 0, 'exactly one', path=p, fd=0, request=1)
    A.err('ioctl', errno.EBADF, 'no such file handle', file=999, request=1)
    A.err('ioctl', errno.ENOENT, 'open', path=os.path.join(tmp, 'nope'), request=1)
    A.err('ioctl', 0, 'not both', path=p, request=1, data=b'x', arg=1)
    A.err('read_mem', errno.EFAULT, 'Bad address', addr=16, len=8)
    A.err('read_mem', errno.EINVAL, 'at most', addr=16, len=2 << 20)
    A.err('read_mem', 0, "'addr' and 'len'", addr=16)


@test
def worker_relays_ops_and_handles(A, tmp):
    w = A.ok('worker_spawn')
    n = w['worker']
    check(1 <= n <= 255 and w['pid'] > 0, 'worker_spawn: %s' % short(w))
    r = A.ok('exec', cmd='echo $PPID', worker=n)
    eq(r['stdout'], b'%d\n' % w['pid'], 'the command is a child of the worker')
    h = A.ok('spawn', cmd='echo streamed; read x', worker=n)['proc']
    eq(h >> 24, n, 'the worker\'s handles are in its range')
    sid = A.ok('stream_open', proc=h, which='stdout')['stream']
    eq(sid >> 24, n, 'a stream of the worker is in its range too')
    data, _, _ = take(A, sid, 9)
    eq(data, b'streamed\n', 'push frames come through the relay')
    A.ok('stdin_write', proc=h, data=b'\n')
    eq(A.ok('wait', proc=h)['exit_code'], 0, 'wait, routed by the handle')
    eq(A.ok('syscall', nr=SYS_getpid, worker=n)['ret'], w['pid'], 'a syscall in the worker')
    A.err('exec', errno.ESRCH, 'no worker 77', cmd='true', worker=77)
    own = A.ok('spawn', cmd='true')['proc']
    eq(A.ok('wait', proc=own, worker=n)['exit_code'], 0, 'an agent handle goes to the agent, whatever worker says')
    A.err('wait', errno.ESRCH, 'no worker 9', proc=(9 << 24) | 1)
    r = A.ok('worker_join', worker=n)
    eq((r['status'], r['exit_code']), ('exited', 0), 'join: EOF ends it cleanly')
    A.err('exec', errno.ESRCH, 'no worker', cmd='true', worker=n)
    A.err('worker_join', errno.ESRCH, 'no worker', worker=n)


@test
def worker_death_answers_what_it_owed(A, tmp):
    n = A.ok('worker_spawn')['worker']
    h = A.ok('spawn', cmd='sleep 60', worker=n)['proc']
    i = A.request('wait', proc=h)
    A.ok('worker_kill', worker=n, signal=9)
    ta.expect_err(A.result(i), errno.EPIPE, 'ended before it answered', 'a wait the worker owed')
    r = A.ok('worker_join', worker=n)
    eq((r['status'], r['signal']), ('signalled', 9), 'join after a kill')
    A.err('worker_kill', errno.ESRCH, 'no worker', worker=n)


@test
def worker_join_timeout_kills(A, tmp):
    n = A.ok('worker_spawn')['worker']
    # a call that blocks the worker's loop: EOF is never read, the deadline ends it
    A.request('syscall', nr=SYS_pause, worker=n)
    time.sleep(0.2)
    t0 = time.monotonic()
    r = A.ok('worker_join', worker=n, timeout_ms=300)
    eq((r['status'], r['signal']), ('signalled', 9), 'a worker that does not end in time is killed')
    check(time.monotonic() - t0 < 5, 'killed at the join deadline')


@test
def worker_credentials_and_errors(A, tmp):
    A.err('worker_spawn', errno.EINVAL, "unknown capability 'warp'", caps=['net_admin', 'warp'])
    A.err('worker_spawn', errno.EINVAL, "unknown namespace 'space'", unshare=['space'])
    A.err('worker_spawn', errno.EINVAL, 'between 0 and', uid=-5)
    A.err('worker_spawn', errno.ENOENT, 'entering cwd', cwd=os.path.join(tmp, 'nope'))
    if not ROOT:
        A.err('worker_spawn', errno.EPERM, 'taking its credentials', uid=65534)
        return
    if not others_can_exec(ta.AGENT):
        # an agent under a private directory (a build in /root): the worker,
        # as nobody, cannot exec it, and says so
        A.err('worker_spawn', errno.EACCES, "exec'ing the agent", uid=65534, gid=65534)
        return
    n = A.ok('worker_spawn', uid=65534, gid=65534, groups=[65534])['worker']
    eq(A.ok('syscall', nr=SYS_getuid, worker=n)['ret'], 65534, 'the worker\'s uid')
    eq(A.ok('exec', cmd='id -G', worker=n)['stdout'], b'65534\n', 'its groups')
    A.ok('worker_join', worker=n)
    n = A.ok('worker_spawn', uid=65534, caps=['CAP_NET_RAW', 'sys_time'])['worker']
    out = A.ok('exec', cmd='grep CapEff /proc/self/status', worker=n)['stdout']
    eq(out.split()[1], b'%016x' % ((1 << 13) | (1 << 25)), 'ambient capabilities survive the exec')
    A.ok('worker_join', worker=n)


if __name__ == '__main__':
    sys.exit(ta.main(TESTS))
