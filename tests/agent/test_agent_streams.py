#!/usr/bin/python3
"""The agent's streams, file handles, process status, credentials and clock
ops (docs/wire.md), driven over --stdio like test_agent.py, whose helpers and
runner this file uses.

usage: test_agent_streams.py PATH/TO/provium-agent [TEST...]
"""
import errno
import os
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_agent as ta  # noqa: E402
from test_agent import Fail, check, eq, short  # noqa: E402

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def take(A, sid, want=None, eof=False, timeout=15):
    """Push frames of stream sid until `want` bytes have come (or the end, with
    eof): (data, ended, error) where error is the error frame if one came."""
    data = bytearray()
    end = time.monotonic() + timeout
    with A.cv:
        while True:
            keep = []
            ended = err = None
            for m in A.unsolicited:
                if m.get('op') != 'stream' or m.get('stream') != sid or ended or err:
                    keep.append(m)
                    continue
                check('id' not in m, 'a push frame carries no id: %s' % short(m))
                if 'data' in m:
                    data += m['data']
                elif m.get('eof') is True:
                    ended = True
                elif 'error' in m:
                    err = m
                else:
                    raise Fail('a push frame with neither data, eof nor error: %s' % short(m))
            A.unsolicited[:] = keep
            if err or ended or (want is not None and not eof and len(data) >= want):
                return bytes(data), bool(ended), err
            left = end - time.monotonic()
            if left <= 0:
                raise Fail('stream %s: %d bytes and no %s within %ss (got %s)'
                           % (sid, len(data), 'end' if eof else '%s bytes' % want, timeout, short(data)))
            if A.eof:
                raise Fail('the agent went away while stream %s was read' % sid)
            A.cv.wait(min(left, 0.5))


def take_more(A, sid, have, want, timeout=15):
    while len(have) < want:
        d, ended, err = take(A, sid, want - len(have), timeout=timeout)
        check(not ended and not err, 'stream %s ended early (%s) after %s' % (sid, err, short(have)))
        have += d
    return have


def quiet(A, sid, secs=0.3):
    """Nothing more comes on stream sid for secs."""
    time.sleep(secs)
    with A.cv:
        extra = [m for m in A.unsolicited if m.get('stream') == sid]
    check(not extra, 'stream %s: unexpected frames %s' % (sid, short(extra)))


# ---- process output streams -------------------------------------------------------------


@test
def stdout_stream_as_it_comes(A, tmp):
    h = A.ok('spawn', cmd='echo one; echo err >&2; sleep 0.3; echo two')['proc']
    sid = A.ok('stream_open', proc=h, which='stdout')['stream']
    data, ended, err = take(A, sid, eof=True)
    eq((data, ended, err), (b'one\ntwo\n', True, None), 'the stdout stream')
    r = A.ok('wait', proc=h)
    eq((r['exit_code'], r['stdout'], r['stderr']), (0, b'', b'err\n'),
       'wait: stdout went to the stream, stderr was buffered')


@test
def stderr_stream_gets_what_came_before(A, tmp):
    h = A.ok('spawn', cmd='echo early >&2; read x; echo late >&2')['proc']
    time.sleep(0.3)  # "early" is buffered in the agent by now
    sid = A.ok('stream_open', proc=h, which='stderr')['stream']
    data, _, _ = take(A, sid, 6)
    eq(data, b'early\n', 'bytes buffered before the stream opened come first')
    A.ok('stdin_write', proc=h, data=b'go\n')
    data, ended, _ = take(A, sid, eof=True)
    eq((data, ended), (b'late\n', True), 'then the rest, then the end')
    A.err('stream_open', errno.EBUSY, 'stderr', proc=h, which='stderr')
    eq(A.ok('wait', proc=h)['stderr'], b'', 'wait: no stderr left')


@test
def stdout_stream_has_no_output_cap(A, tmp):
    n = ta.OUTPUT_CAP * 2 + 12345
    h = A.ok('spawn', argv=['head', '-c', str(n), '/dev/zero'])['proc']
    sid = A.ok('stream_open', proc=h, which='stdout')['stream']
    data, ended, err = take(A, sid, eof=True, timeout=60)
    eq((len(data), ended, err), (n, True, None), 'a streamed stdout past the 16 MiB cap')
    eq(A.ok('wait', proc=h)['exit_code'], 0, 'exit code')


@test
def closed_stdout_stream_is_drained(A, tmp):
    # after stream_close the output is read and dropped: the writer never blocks
    h = A.ok('spawn', argv=['head', '-c', str(40 << 20), '/dev/zero'])['proc']
    sid = A.ok('stream_open', proc=h, which='stdout')['stream']
    A.ok('stream_close', stream=sid)
    r = A.ok('wait', proc=h, timeout_ms=30000, timeout=40)
    eq((r['status'], r['exit_code'], r['stdout']), ('exited', 0, b''), 'wait after the stream was closed')
    A.err('stream_close', errno.EBADF, 'no such stream', stream=sid)


@test
def stream_open_errors(A, tmp):
    A.err('stream_open', 0, 'exactly one of')
    A.err('stream_open', 0, 'exactly one of', path='/', proc=1)
    A.err('stream_open', errno.ESRCH, None, proc=999, which='stdout')
    h = A.ok('spawn', argv=['cat'])['proc']
    A.err('stream_open', 0, "'which' must be", proc=h, which='stdin')
    A.err('stream_open', 0, "'which' must be", proc=h)
    A.err('stream_open', errno.ENOENT, os.path.join(tmp, 'missing'), path=os.path.join(tmp, 'missing'))
    A.err('stream_open', errno.EISDIR, None, path=tmp)
    A.err('stream_open', errno.EBADF, 'no such file handle', file=77)
    fifo = os.path.join(tmp, 'fifo')
    os.mkfifo(fifo)
    A.err('stream_open', errno.ESPIPE, 'not a regular file', path=fifo, start=5)
    f = os.path.join(tmp, 'f')
    open(f, 'w').write('x')
    A.err('stream_open', errno.EINVAL, "'start' must be <= 0", path=f, start=1, from_end=True)
    A.err('stream_open', 0, 'start', path=f, start='end')
    A.err('stream_close', errno.EBADF, 'no such stream', stream=12345)
    A.ok('close_stdin', proc=h)
    A.ok('wait', proc=h)


# ---- followed files ----------------------------------------------------------------------


@test
def tail_follows_appends(A, tmp):
    f = os.path.join(tmp, 'log')
    with open(f, 'wb') as w:
        w.write(b'first\n')
    sid = A.ok('stream_open', path=f)['stream']
    eq(take(A, sid, 6)[0], b'first\n', 'from the start by default')
    with open(f, 'ab') as w:
        w.write(b'second\n')
    eq(take(A, sid, 7)[0], b'second\n', 'an append is pushed')
    quiet(A, sid)
    A.ok('stream_close', stream=sid)
    with open(f, 'ab') as w:
        w.write(b'after close\n')
    quiet(A, sid)


@test
def tail_start_positions(A, tmp):
    f = os.path.join(tmp, 'log')
    with open(f, 'wb') as w:
        w.write(b'0123456789')
    s_end = A.ok('stream_open', path=f, from_end=True)['stream']
    s_last3 = A.ok('stream_open', path=f, start=-3, from_end=True)['stream']
    s_off = A.ok('stream_open', path=f, start=4)['stream']
    s_huge_back = A.ok('stream_open', path=f, start=-1000, from_end=True)['stream']
    eq(take(A, s_last3, 3)[0], b'789', 'the last 3 bytes')
    eq(take(A, s_off, 6)[0], b'456789', 'from offset 4')
    eq(take(A, s_huge_back, 10)[0], b'0123456789', 'more than the file back: from its start')
    quiet(A, s_end, 0.2)
    with open(f, 'ab') as w:
        w.write(b'new')
    for s in (s_end, s_last3, s_off, s_huge_back):
        eq(take(A, s, 3)[0], b'new', 'stream %s after an append' % s)


@test
def tail_survives_truncation(A, tmp):
    f = os.path.join(tmp, 'log')
    with open(f, 'wb') as w:
        w.write(b'old contents\n')
    sid = A.ok('stream_open', path=f)['stream']
    take(A, sid, 13)
    with open(f, 'wb') as w:  # truncates, like logrotate's copytruncate
        w.write(b'new\n')
    eq(take(A, sid, 4)[0], b'new\n', 'after truncation the file is read from its start')


@test
def tail_fifo_ends_when_writers_leave(A, tmp):
    fifo = os.path.join(tmp, 'fifo')
    os.mkfifo(fifo)
    sid = A.ok('stream_open', path=fifo)['stream']
    quiet(A, sid, 0.2)  # no writer yet is not the end
    A.ok('exec', cmd='echo hi > ' + fifo)
    data, ended, err = take(A, sid, eof=True)
    eq((data, ended, err), (b'hi\n', True, None), 'a FIFO: its data, then the end')


# ---- file handles ------------------------------------------------------------------------


@test
def file_handle_read_write_seek(A, tmp):
    f = os.path.join(tmp, 'data')
    fh = A.ok('file_open', path=f, write=True, read=True, create=True, mode=0o600)['file']
    eq(stat.S_IMODE(os.stat(f).st_mode), 0o600, 'mode of a created file (not the umask)')
    eq(A.ok('file_write', file=fh, data=b'hello world')['written'], 11, 'written')
    eq(A.ok('file_seek', file=fh, offset=0, whence='cur')['offset'], 11, 'tell')
    eq(A.ok('file_seek', file=fh, offset=6)['offset'], 6, 'seek set')
    eq(A.ok('file_read', file=fh, n=3)['data'], b'wor', 'read 3')
    eq(A.ok('file_read', file=fh)['data'], b'ld', 'read to the end')
    eq(A.ok('file_read', file=fh)['data'], b'', 'at the end')
    eq(A.ok('file_seek', file=fh, offset=-5, whence='end')['offset'], 6, 'seek end')
    A.err('file_seek', errno.EINVAL, None, file=fh, offset=-100)
    A.err('file_seek', 0, "'whence' must be", file=fh, offset=0, whence='middle')
    A.err('file_read', 0, 'at most 64 MiB', file=fh, n=ta.READ_CAP + 1)
    A.ok('file_close', file=fh)
    A.err('file_read', errno.EBADF, 'no such file handle', file=fh)
    eq(open(f, 'rb').read(), b'hello world', 'contents on disk')


@test
def file_open_flags(A, tmp):
    f = os.path.join(tmp, 'data')
    A.err('file_open', errno.ENOENT, f, path=f)
    A.err('file_open', 0, "'mode'", path=f, create=True, mode=0o70000)
    A.err('file_open', 0, "missing 'path'")
    open(f, 'wb').write(b'abc')
    os.chmod(f, 0o644)
    A.err('file_open', errno.EEXIST, None, path=f, exclusive=True)
    fh = A.ok('file_open', path=f, append=True, create=True, mode=0o600)['file']
    A.ok('file_write', file=fh, data=b'def')
    A.err('file_read', errno.EBADF, None, file=fh)  # write-only
    A.ok('file_close', file=fh)
    eq(open(f, 'rb').read(), b'abcdef', 'append')
    eq(stat.S_IMODE(os.stat(f).st_mode), 0o644, 'mode applies only to a file the open created')
    fh = A.ok('file_open', path=f, truncate=True)['file']
    A.ok('file_close', file=fh)
    eq(os.path.getsize(f), 0, 'truncate')
    fh = A.ok('file_open', path=f)['file']  # read-only by default
    A.err('file_write', errno.EBADF, None, file=fh, data=b'x')
    A.err('file_write', 0, "missing 'data'", file=fh)


@test
def file_handle_tail_stream(A, tmp):
    f = os.path.join(tmp, 'log')
    open(f, 'wb').write(b'0123456789')
    fh = A.ok('file_open', path=f)['file']
    A.ok('file_read', file=fh, n=4)
    sid = A.ok('stream_open', file=fh)['stream']
    eq(take(A, sid, 6)[0], b'456789', "a handle's stream starts at the handle's offset")
    eq(A.ok('file_read', file=fh, n=2)['data'], b'45', 'and does not move that offset')
    A.ok('file_close', file=fh)
    with open(f, 'ab') as w:
        w.write(b'X')
    eq(take(A, sid, 1)[0], b'X', 'the stream outlives the handle')


# ---- process status and credentials -----------------------------------------------------


@test
def proc_status_states(A, tmp):
    h = A.ok('spawn', argv=['sleep', '30'])['proc']
    r = A.ok('proc_status', proc=h)
    eq((r['status'], r['exit_code'], r['signal']), ('running', None, None), 'a running process')
    A.ok('kill', proc=h, signal=15)
    for _ in range(100):
        r = A.ok('proc_status', proc=h)
        if r['status'] != 'running':
            break
        time.sleep(0.05)
    eq((r['status'], r['exit_code'], r['signal']), ('signalled', None, 15), 'after SIGTERM')
    eq(A.ok('wait', proc=h)['signal'], 15, 'wait agrees')
    A.err('proc_status', errno.ESRCH, 'no such process handle', proc=h)
    h = A.ok('spawn', cmd='exit 3')['proc']
    for _ in range(100):
        r = A.ok('proc_status', proc=h)
        if r['status'] != 'running':
            break
        time.sleep(0.05)
    eq((r['status'], r['exit_code']), ('exited', 3), 'an exited process')
    h = A.ok('spawn', argv=['sleep', '30'], timeout_ms=100)['proc']
    time.sleep(0.6)
    eq(A.ok('proc_status', proc=h)['status'], 'timed_out', 'a process past its timeout')


@test
def run_as_another_user(A, tmp):
    if os.geteuid() != 0:
        print('     (skipped: needs root)')
        return
    r = A.ok('exec', cmd='id -u; id -g; id -G', uid=65534, gid=65534, groups=[65534, 100])
    eq(r['stdout'], b'65534\n65534\n65534 100\n', 'uid, gid and groups')
    r = A.ok('exec', cmd='id -u; id -G', uid=65534)
    eq(r['stdout'], b'65534\n0\n', "a uid alone drops the agent's supplementary groups")
    r = A.ok('exec', cmd='id -G', groups=[])
    eq(r['stdout'], b'0\n', 'empty groups')
    os.chmod(tmp, 0o700)
    A.err('exec', errno.EACCES, 'cwd', argv=['true'], uid=65534, cwd=tmp)
    A.err('exec', errno.EINVAL, "'uid' and 'gid'", argv=['true'], uid=-2)
    A.err('exec', errno.EINVAL, "'uid' and 'gid'", argv=['true'], gid=1 << 32)
    A.err('spawn', 0, 'groups', argv=['true'], groups=['wheel'])
    A.err('spawn', 0, 'groups', argv=['true'], groups=list(range(300)))


# ---- the clock ---------------------------------------------------------------------------


@test
def clock_ops_outside_a_vm(A, tmp):
    before = time.time_ns()
    t = A.ok('clock_get')['time_ns']
    check(before - 10**9 <= t <= time.time_ns() + 10**9, 'clock_get %d is the real time' % t)
    A.err('clock_set', errno.EPERM, 'not PID 1', time_ns=86400 * 10**9)
    A.err('clock_adjust', errno.EPERM, 'not PID 1', delta_ns=10**9)
    A.err('clock_set', 0, "'time_ns'")
    A.err('clock_adjust', 0, "'delta_ns'")
    check(abs(time.time_ns() - before) < 60 * 10**9, "the host's clock was left alone")


@test
def sleep_answers_later_without_blocking(A, tmp):
    t0 = time.monotonic()
    i = A.request('sleep', duration_ns=400 * 10**6)
    A.ok('ping')
    check(not A.has(i), 'a ping is answered while a sleep is pending')
    r = A.result(i)
    dt = time.monotonic() - t0
    check(r.get('ok') is True, 'sleep: %s' % short(r))
    check(dt >= 0.39, 'sleep answered after %.3fs, before its 0.4 s' % dt)
    A.err('sleep', 0, "'duration_ns'")
    A.err('sleep', errno.EINVAL, 'more than a day', duration_ns=10**15)


@test
def boot_files_outside_a_vm(A, tmp):
    # only PID 1 of a guest looks for the staging directory in its initramfs
    r = A.ok('boot_files')
    check(r.get('found') is False and r.get('installed') == 0 and 'error' not in r, 'boot_files: %s' % short(r))


@test
def follow_start_past_the_end(A, tmp):
    # an offset past the end starts at the end: the bytes before it are never sent
    p = os.path.join(tmp, 'short.log')
    with open(p, 'wb') as f:
        f.write(b'hello')
    sid = A.ok('stream_open', path=p, start=100)['stream']
    time.sleep(0.3)
    with open(p, 'ab') as f:
        f.write(b'abc')
    data, _, err = take(A, sid, 3)
    eq((data, err), (b'abc', None), 'what came after the end, nothing from before')
    A.ok('stream_close', stream=sid)


if __name__ == '__main__':
    sys.exit(ta.main(TESTS))
