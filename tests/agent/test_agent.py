#!/usr/bin/python3
"""Drives the real provium-agent binary through every op and error path of
docs/wire.md, on --stdio (and once on --port with a unix socket).

usage: test_agent.py PATH/TO/provium-agent [TEST-NAME-SUBSTRING...]

Each test gets a fresh agent and a fresh temporary directory; after the test
the agent must still answer a ping and exit 0 at EOF (it never crashes).
Prints one line per test and a final `agent: N passed, N failed`.
"""
import errno
import os
import random
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import msgpack

AGENT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
ONLY = sys.argv[2:]

OUTPUT_CAP = 16 * 1024 * 1024
READ_CAP = 64 * 1024 * 1024
MAX_PROCS = 64
FRAME_MAX_BODY = 128 * 1024 * 1024

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Fail(Exception):
    pass


def short(v, n=200):
    r = repr(v)
    return r if len(r) <= n else r[:n] + '...(%d chars)' % len(r)


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(got, want, what):
    if got != want:
        raise Fail('%s: expected %s, got %s' % (what, short(want), short(got)))


def frame(obj):
    b = msgpack.packb(obj, use_bin_type=True)
    return struct.pack('>I', len(b)) + b


def raw_frame(body):
    return struct.pack('>I', len(body)) + body


def mp_str_raw(b):
    """A msgpack str holding arbitrary (possibly invalid UTF-8) bytes."""
    assert len(b) < 256
    return bytes([0xd9, len(b)]) + b


class Agent:
    """One provium-agent --stdio; a reader thread files responses by id."""

    def __init__(self, env=None, args=None):
        e = dict(os.environ)
        e['AGENT_TEST_INHERITED'] = 'from-agent-env'
        e.pop('PROVIUM_AGENT_CMDLINE', None)
        if env:
            e.update(env)
        self.p = subprocess.Popen([AGENT] + (args or ['--stdio']), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, env=e)
        self.cv = threading.Condition()
        self.resp = {}
        self.unsolicited = []
        self.eof = False
        self.error = None
        self.next_id = 1
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        self.hello = self.next_unsolicited()

    def _read(self):
        f = self.p.stdout
        try:
            while True:
                h = f.read(4)
                if not h:
                    break
                if len(h) < 4:
                    raise Fail('stdout ends inside a frame header')
                n = struct.unpack('>I', h)[0]
                body = f.read(n)
                if len(body) < n:
                    raise Fail('stdout ends inside a frame body')
                # raw=False: every str the agent sends must be valid UTF-8
                m = msgpack.unpackb(body, raw=False)
                if not isinstance(m, dict):
                    raise Fail('agent sent a non-map frame: %s' % short(m))
                with self.cv:
                    if 'id' in m:
                        self.resp.setdefault(m['id'], []).append(m)
                    else:
                        self.unsolicited.append(m)
                    self.cv.notify_all()
        except Exception as ex:  # noqa: BLE001 - reported by the test
            with self.cv:
                self.error = ex
        finally:
            with self.cv:
                self.eof = True
                self.cv.notify_all()

    def next_unsolicited(self, timeout=10):
        end = time.monotonic() + timeout
        with self.cv:
            while not self.unsolicited:
                if self.eof or self.error:
                    raise Fail('agent stream ended before a hello (%s)' % self.error)
                left = end - time.monotonic()
                if left <= 0:
                    raise Fail('no hello within %ss' % timeout)
                self.cv.wait(left)
            return self.unsolicited.pop(0)

    def send(self, obj):
        self.send_raw(frame(obj))

    def send_raw(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def request(self, op, **kw):
        i = self.next_id
        self.next_id += 1
        m = {'id': i, 'op': op}
        m.update(kw)
        self.send(m)
        return i

    def has(self, i):
        with self.cv:
            return bool(self.resp.get(i))

    def result(self, i, timeout=30):
        end = time.monotonic() + timeout
        with self.cv:
            while not self.resp.get(i):
                if self.error:
                    raise Fail('reading the agent: %s' % self.error)
                if self.eof:
                    raise Fail('agent closed its stdout while request %s was pending (exit %s)'
                               % (i, self.p.poll()))
                left = end - time.monotonic()
                if left <= 0:
                    raise Fail('no response to request %s within %ss' % (i, timeout))
                self.cv.wait(left)
            return self.resp[i].pop(0)

    def call(self, op, timeout=30, **kw):
        return self.result(self.request(op, **kw), timeout)

    def ok(self, op, timeout=30, **kw):
        r = self.call(op, timeout, **kw)
        check(r.get('ok') is True, '%s %s: expected ok, got %s' % (op, short(kw, 120), short(r)))
        return r

    def err(self, op, want_errno, contains=None, timeout=30, **kw):
        r = self.call(op, timeout, **kw)
        expect_err(r, want_errno, contains, '%s %s' % (op, short(kw, 120)))
        return r

    def finish(self):
        """Still alive, then a clean exit at EOF."""
        r = self.call('ping', timeout=10)
        check(r.get('ok') is True, 'ping after the test failed: %s' % short(r))
        self.p.stdin.close()
        try:
            rc = self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise Fail('agent did not exit within 10 s of EOF on stdin')
        eq(rc, 0, 'agent exit status at EOF')
        self.t.join(5)
        if self.error:
            raise Fail('reading the agent: %s' % self.error)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def expect_err(r, want_errno, contains, what):
    check(r.get('ok') is False, '%s: expected an error, got %s' % (what, short(r)))
    check(isinstance(r.get('error'), str) and r['error'], '%s: no error message: %s' % (what, short(r)))
    check('\n' not in r['error'], '%s: error message is not one line' % what)
    if want_errno is not None:
        eq(r.get('errno'), want_errno, '%s: errno (message %r)' % (what, r.get('error')))
    if contains is not None:
        check(contains in r['error'], '%s: error %r does not contain %r' % (what, r['error'], contains))


def pid_gone(pid, timeout=3.0):
    """True once pid no longer exists or is a zombie (killed, not yet reaped
    by whoever inherited it)."""
    end = time.monotonic() + timeout
    while True:
        try:
            with open('/proc/%d/stat' % pid) as f:
                st = f.read()
            state = st[st.rindex(')') + 2]
            if state in 'ZX':
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.02)


def pid_running(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
        return st[st.rindex(')') + 2] not in 'ZX'
    except FileNotFoundError:
        return False


# ---- handshake -----------------------------------------------------------------------


@test
def hello_first(A, tmp):
    h = A.hello
    eq(h.get('op'), 'hello', 'first message op')
    eq(h.get('protocol_version'), 1, 'protocol_version')
    check(str(h.get('agent', '')).startswith('provium-agent '), 'agent field: %s' % short(h))
    check('id' not in h, 'hello must not carry an id')


@test
def protocol_version_override(A, tmp):
    cl = os.path.join(tmp, 'cmdline')
    with open(cl, 'w') as f:
        f.write('console=ttyS0 quiet provium.protocol_version=7 panic=-1\n')
    B = Agent(env={'PROVIUM_AGENT_CMDLINE': cl})
    try:
        eq(B.hello.get('protocol_version'), 7, 'overridden protocol_version')
        B.finish()
    finally:
        B.kill()


@test
def ping(A, tmp):
    r = A.ok('ping')
    eq(sorted(r), ['id', 'ok'], 'ping response keys')


@test
def unknown_keys_ignored(A, tmp):
    A.ok('ping', zzz_future_option=[1, {'a': b'x'}])


# ---- exec ------------------------------------------------------------------------------


@test
def exec_argv(A, tmp):
    r = A.ok('exec', argv=['printf', '%s|', 'a b', '', 'ü'])
    eq(r['status'], 'exited', 'status')
    eq(r['exit_code'], 0, 'exit_code')
    check(r['signal'] is None, 'signal should be nil')
    eq(r['stdout'], 'a b||ü|'.encode(), 'stdout')
    eq(r['stderr'], b'', 'stderr')
    check(isinstance(r['stdout'], bytes), 'stdout must be bin')


@test
def exec_cmd(A, tmp):
    r = A.ok('exec', cmd='echo $((1+2)); echo oops >&2')
    eq(r['stdout'], b'3\n', 'stdout')
    eq(r['stderr'], b'oops\n', 'stderr')


@test
def exec_env(A, tmp):
    r = A.ok('exec', cmd='echo "$FOO|$AGENT_TEST_INHERITED|$SP"',
             env={'FOO': 'bar', 'SP': 'a = b'})
    eq(r['stdout'], b'bar|from-agent-env|a = b\n', 'env added to the agent environment')
    r = A.ok('exec', cmd='echo "$AGENT_TEST_INHERITED"', env={'AGENT_TEST_INHERITED': 'overridden'})
    eq(r['stdout'], b'overridden\n', 'env overrides an inherited variable')


@test
def exec_env_clear(A, tmp):
    r = A.ok('exec', argv=['/usr/bin/env'], env_clear=True, env={'ONLY': '1'})
    eq(r['stdout'], b'ONLY=1\n', 'environment after env_clear')
    # without PATH in the child's environment the agent's PATH still finds programs
    r = A.ok('exec', argv=['env'], env_clear=True)
    eq(r['stdout'], b'', 'empty environment')
    eq(r['exit_code'], 0, 'env found via the agent PATH')


@test
def exec_cwd(A, tmp):
    r = A.ok('exec', argv=['pwd'], cwd=tmp)
    eq(r['stdout'], (os.path.realpath(tmp) + '\n').encode(), 'pwd in cwd')
    missing = os.path.join(tmp, 'nope')
    A.err('exec', errno.ENOENT, 'cwd ' + missing, argv=['pwd'], cwd=missing)
    with open(os.path.join(tmp, 'f'), 'w'):
        pass
    A.err('exec', errno.ENOTDIR, None, argv=['pwd'], cwd=os.path.join(tmp, 'f'))


@test
def exec_stdin(A, tmp):
    r = A.ok('exec', argv=['cat'], stdin=b'hello\x00world')
    eq(r['stdout'], b'hello\x00world', 'cat of stdin')
    r = A.ok('exec', argv=['cat'], stdin=b'')
    eq(r['stdout'], b'', 'empty stdin')
    # absent stdin is /dev/null, never the agent's own stdin (the protocol)
    r = A.ok('exec', argv=['cat'], timeout_ms=5000)
    eq(r['status'], 'exited', 'cat without stdin ends at once')
    eq(r['stdout'], b'', 'cat of /dev/null')
    r = A.ok('exec', argv=['readlink', '/proc/self/fd/0'])
    eq(r['stdout'], b'/dev/null\n', 'stdin without stdin bytes')


@test
def exec_stdin_not_read(A, tmp):
    # the child exits without reading 4 MiB of stdin: EPIPE, not a hang
    t0 = time.monotonic()
    r = A.ok('exec', argv=['true'], stdin=os.urandom(4 << 20), timeout=20)
    eq(r['status'], 'exited', 'status')
    eq(r['exit_code'], 0, 'exit_code')
    check(time.monotonic() - t0 < 10, 'exec with unread stdin took too long')


@test
def exit_codes(A, tmp):
    for code in (0, 1, 42, 255):
        r = A.ok('exec', cmd='exit %d' % code)
        eq((r['status'], r['exit_code'], r['signal']), ('exited', code, None), 'exit %d' % code)


@test
def signalled(A, tmp):
    for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGUSR1):
        r = A.ok('exec', cmd='echo before; kill -%d $$' % sig)
        eq((r['status'], r['exit_code'], r['signal']), ('signalled', None, int(sig)), 'kill -%d' % sig)
        eq(r['stdout'], b'before\n', 'output before the signal')


@test
def exec_missing_program(A, tmp):
    A.err('exec', errno.ENOENT, 'exec /nonexistent/prog: No such file or directory',
          argv=['/nonexistent/prog'])
    A.err('exec', errno.ENOENT, 'no-such-program-xyz', argv=['no-such-program-xyz'])
    A.err('exec', errno.ENOENT, None, argv=[''])
    noexec = os.path.join(tmp, 'noexec')
    with open(noexec, 'w') as f:
        f.write('#!/bin/sh\necho hi\n')
    os.chmod(noexec, 0o644)
    A.err('exec', errno.EACCES, 'Permission denied', argv=[noexec])
    # a script without #! cannot be execve'd: ENOEXEC, not a shell fallback
    bare = os.path.join(tmp, 'bare')
    with open(bare, 'wb') as f:
        f.write(b'\x7fELF-not-really')
    os.chmod(bare, 0o755)
    A.err('exec', errno.ENOEXEC, None, argv=[bare])
    A.err('spawn', errno.ENOENT, 'spawn /nonexistent/prog', argv=['/nonexistent/prog'])


@test
def exec_isolation(A, tmp):
    # only 0, 1, 2 (and ls's own directory fd) are open in a child
    r = A.ok('exec', argv=['ls', '/proc/self/fd'])
    fds = set(int(x) for x in r['stdout'].split())
    check(fds <= {0, 1, 2, 3}, 'fds leaked into the child: %s' % sorted(fds))
    # no blocked signals, SIGPIPE back to default
    r = A.ok('exec', argv=['grep', '-E', '^Sig(Blk|Ign)', '/proc/self/status'])
    vals = dict(l.split(':') for l in r['stdout'].decode().splitlines())
    eq(int(vals['SigBlk'], 16), 0, 'blocked signals in the child')
    eq(int(vals['SigIgn'], 16) & (1 << (signal.SIGPIPE - 1)), 0, 'SIGPIPE ignored in the child')
    # own session and process group
    r = A.ok('exec', cmd='echo $$; cut -d" " -f5,6 /proc/$$/stat')
    pid, ids = r['stdout'].decode().splitlines()
    eq(ids.split(), [pid, pid], 'process group and session of the child')


@test
def timeout_kills_group(A, tmp):
    pidfile = os.path.join(tmp, 'gc.pid')
    t0 = time.monotonic()
    r = A.ok('exec', cmd='sleep 300 & echo $! > %s; echo started; sleep 300' % pidfile, timeout_ms=500)
    took = time.monotonic() - t0
    eq(r['status'], 'timed_out', 'status')
    eq(r['stdout'], b'started\n', 'output captured before the timeout')
    check(r['exit_code'] is None, 'exit_code should be nil when killed')
    eq(r['signal'], 9, 'signal')
    check(0.4 < took < 5, 'timeout took %.2fs' % took)
    gc = int(open(pidfile).read())
    check(pid_gone(gc), 'grandchild %d survived the timeout' % gc)


@test
def background_grandchild_holding_pipes(A, tmp):
    # the shell exits at once but `sleep` keeps stdout: reported 100 ms later,
    # the group killed
    t0 = time.monotonic()
    r = A.ok('exec', cmd='sleep 30 & echo $!')
    took = time.monotonic() - t0
    eq((r['status'], r['exit_code']), ('exited', 0), 'status')
    check(took < 3, 'exec waited %.2fs for a background process' % took)
    gc = int(r['stdout'])
    check(pid_gone(gc), 'background process holding the pipes survived')
    # one that lets go of the pipes keeps running
    r = A.ok('exec', cmd='sleep 30 >/dev/null 2>&1 & echo $!')
    gc = int(r['stdout'])
    time.sleep(0.3)
    check(pid_running(gc), 'background process with redirected output was killed')
    os.kill(gc, signal.SIGKILL)


@test
def output_cap(A, tmp):
    r = A.ok('exec', cmd='head -c %d /dev/zero' % OUTPUT_CAP, timeout=60)
    eq(len(r['stdout']), OUTPUT_CAP, 'stdout exactly at the cap')
    t0 = time.monotonic()
    A.err('exec', 0, 'stdout exceeded the 16 MiB output cap', timeout=60,
          cmd='head -c %d /dev/zero; echo never-reported' % (OUTPUT_CAP + 1))
    A.err('exec', 0, 'exec cat /dev/zero >&2: stderr exceeded the 16 MiB output cap', timeout=60,
          cmd='cat /dev/zero >&2')
    A.err('exec', 0, 'exec yes: stdout exceeded', timeout=60, argv=['yes'])
    check(time.monotonic() - t0 < 30, 'cap handling too slow')


@test
def output_all_bytes(A, tmp):
    data = bytes(range(256)) * 3
    path = os.path.join(tmp, 'bytes')
    with open(path, 'wb') as f:
        f.write(data)
    r = A.ok('exec', cmd='cat %s; cat %s >&2' % (path, path))
    eq(r['stdout'], data, 'stdout with every byte value')
    eq(r['stderr'], data, 'stderr with every byte value')
    r = A.ok('exec', argv=['cat'], stdin=data)
    eq(r['stdout'], data, 'stdin with every byte value')


@test
def output_large(A, tmp):
    data = os.urandom(1536 * 1024)
    r = A.ok('exec', argv=['cat'], stdin=data, timeout=60)
    eq(r['stdout'], data, '1.5 MiB through stdin and stdout')
    r = A.ok('exec', cmd='cat >&2', stdin=data, timeout=60)
    eq(r['stderr'], data, '1.5 MiB through stderr')
    eq(r['stdout'], b'', 'stdout')
    r = A.ok('exec', cmd='head -c 3000000 /dev/zero; head -c 2000000 /dev/zero >&2', timeout=60)
    eq((len(r['stdout']), len(r['stderr'])), (3000000, 2000000), 'both streams at once')


@test
def exec_concurrent_with_pings(A, tmp):
    t0 = time.monotonic()
    slow = A.request('exec', cmd='sleep 1; echo slow')
    for _ in range(50):
        A.ok('ping', timeout=5)
    check(time.monotonic() - t0 < 0.8, 'pings were not answered while exec ran')
    check(not A.has(slow), 'exec answered too early')
    r = A.result(slow)
    eq(r['stdout'], b'slow\n', 'slow exec output')
    check(time.monotonic() - t0 >= 0.9, 'exec finished too early')


@test
def exec_parallel(A, tmp):
    t0 = time.monotonic()
    ids = [A.request('exec', cmd='sleep 0.5; echo %d' % i) for i in range(20)]
    for i, rid in enumerate(ids):
        eq(A.result(rid)['stdout'], b'%d\n' % i, 'parallel exec %d' % i)
    check(time.monotonic() - t0 < 4, 'execs ran serially (%.1fs)' % (time.monotonic() - t0))


# ---- spawn, wait, kill, stdin ---------------------------------------------------------------


@test
def spawn_wait(A, tmp):
    r = A.ok('spawn', cmd='sleep 0.6; echo done; echo e >&2; exit 4')
    h, pid = r['proc'], r['pid']
    check(isinstance(h, int) and h > 0, 'proc handle: %s' % short(r))
    check(pid_running(pid), 'spawned pid %d is not running' % pid)
    A.err('wait', errno.ETIMEDOUT, None, proc=h, timeout_ms=50)
    check(pid_running(pid), 'process stopped after a wait timeout')
    r = A.ok('wait', proc=h)
    eq((r['status'], r['exit_code'], r['stdout'], r['stderr']), ('exited', 4, b'done\n', b'e\n'), 'wait result')
    A.err('wait', errno.ESRCH, None, proc=h)
    A.err('wait', errno.ESRCH, None, proc=987654)


@test
def spawn_wait_with_timeout_returns_result(A, tmp):
    h = A.ok('spawn', argv=['echo', 'quick'])['proc']
    r = A.ok('wait', proc=h, timeout_ms=5000)
    eq(r['stdout'], b'quick\n', 'wait with a timeout that does not expire')
    # a process that already finished is returned at once
    h = A.ok('spawn', argv=['true'])['proc']
    time.sleep(0.3)
    t0 = time.monotonic()
    A.ok('wait', proc=h, timeout_ms=10000)
    check(time.monotonic() - t0 < 1, 'wait on a finished process was not immediate')


@test
def spawn_pid(A, tmp):
    pidfile = os.path.join(tmp, 'pid')
    r = A.ok('spawn', cmd='echo $$ > %s; exec cat' % pidfile)
    h, pid = r['proc'], r['pid']
    for _ in range(100):
        if os.path.exists(pidfile) and open(pidfile).read().strip():
            break
        time.sleep(0.02)
    eq(int(open(pidfile).read()), pid, 'pid reported by spawn')
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    eq((int(fields[2]), int(fields[3])), (pid, pid), 'spawned process group and session')
    A.ok('close_stdin', proc=h)
    eq(A.ok('wait', proc=h)['status'], 'exited', 'status')


@test
def spawn_stdin(A, tmp):
    h = A.ok('spawn', argv=['cat'], stdin=b'a')['proc']
    # stdin stays open after the initial bytes
    A.err('wait', errno.ETIMEDOUT, None, proc=h, timeout_ms=200)
    A.ok('stdin_write', proc=h, data=b'b')
    A.ok('stdin_write', proc=h, data=bytes(range(256)))
    big = os.urandom(1 << 20)
    A.ok('stdin_write', proc=h, data=big)
    A.ok('close_stdin', proc=h)
    A.ok('close_stdin', proc=h)  # idempotent
    A.err('stdin_write', errno.EPIPE, None, proc=h, data=b'late')
    r = A.ok('wait', proc=h)
    eq(r['stdout'], b'ab' + bytes(range(256)) + big, 'cat of everything written')
    A.err('stdin_write', errno.ESRCH, None, proc=h, data=b'x')
    A.err('close_stdin', errno.ESRCH, None, proc=h)


@test
def spawn_stdin_closed_by_child(A, tmp):
    h = A.ok('spawn', cmd='exec 0<&-; sleep 0.5')['proc']
    time.sleep(0.1)
    A.ok('stdin_write', proc=h, data=b'x' * 100000)
    time.sleep(0.2)
    A.err('stdin_write', errno.EPIPE, 'closed its stdin', proc=h, data=b'y')
    eq(A.ok('wait', proc=h)['exit_code'], 0, 'exit code')


@test
def kill_by_number(A, tmp):
    h = A.ok('spawn', argv=['sleep', '100'])['proc']
    A.ok('kill', proc=h, signal=9)
    r = A.ok('wait', proc=h, timeout_ms=5000)
    eq((r['status'], r['signal'], r['exit_code']), ('signalled', 9, None), 'after kill 9')
    h = A.ok('spawn', argv=['sleep', '100'])['proc']
    A.ok('kill', proc=h)
    eq(A.ok('wait', proc=h, timeout_ms=5000)['signal'], 15, 'default signal')
    # the whole group is signalled
    pidfile = os.path.join(tmp, 'gc')
    h = A.ok('spawn', cmd='sleep 100 & echo $! > %s; wait' % pidfile)['proc']
    for _ in range(100):
        if os.path.exists(pidfile) and open(pidfile).read().strip():
            break
        time.sleep(0.02)
    A.ok('kill', proc=h, signal=15)
    A.ok('wait', proc=h, timeout_ms=5000)
    check(pid_gone(int(open(pidfile).read())), 'kill did not reach the process group')
    # errors
    h = A.ok('spawn', argv=['sleep', '100'])['proc']
    A.err('kill', errno.EINVAL, 'invalid signal', proc=h, signal=999)
    A.err('kill', errno.EINVAL, None, proc=h, signal=-1)
    A.err('kill', errno.ESRCH, None, proc=424242, signal=9)
    A.ok('kill', proc=h, signal=0)  # a probe
    A.ok('kill', proc=h, signal=9)
    A.ok('wait', proc=h)
    # an exited but unwaited process: kill is a no-op
    h = A.ok('spawn', argv=['true'])['proc']
    time.sleep(0.3)
    A.ok('kill', proc=h, signal=9)
    eq(A.ok('wait', proc=h)['exit_code'], 0, 'exit code after a late kill')


@test
def wait_busy(A, tmp):
    h = A.ok('spawn', argv=['sleep', '100'])['proc']
    first = A.request('wait', proc=h)
    time.sleep(0.1)
    A.err('wait', errno.EBUSY, None, proc=h, timeout_ms=10)
    check(not A.has(first), 'first wait answered early')
    A.ok('kill', proc=h, signal=9)
    r = A.result(first)
    eq(r.get('signal'), 9, 'first wait result')


@test
def spawn_timeout(A, tmp):
    h = A.ok('spawn', cmd='echo hi; sleep 100', timeout_ms=300)['proc']
    r = A.ok('wait', proc=h, timeout_ms=10000)
    eq((r['status'], r['stdout']), ('timed_out', b'hi\n'), 'spawn with timeout_ms')


@test
def spawn_output_cap(A, tmp):
    h = A.ok('spawn', cmd='cat /dev/zero')['proc']
    A.err('wait', 0, 'stdout exceeded the 16 MiB output cap', proc=h, timeout=60)


@test
def max_procs(A, tmp):
    hs = [A.ok('spawn', argv=['sleep', '100'])['proc'] for _ in range(MAX_PROCS)]
    A.err('spawn', 0, 'too many processes', argv=['sleep', '100'])
    A.err('exec', 0, 'too many processes', argv=['true'])
    A.ok('kill', proc=hs[0], signal=9)
    A.ok('wait', proc=hs[0])
    eq(A.ok('exec', argv=['echo', 'x'])['stdout'], b'x\n', 'exec after one process ended')
    for h in hs[1:]:
        A.ok('kill', proc=h, signal=9)
    for h in hs[1:]:
        A.ok('wait', proc=h)


@test
def stdin_eof_ends_agent_and_children(A, tmp):
    r = A.ok('spawn', argv=['sleep', '100'])
    B = A  # the runner's finish() would ping; do it by hand
    B.p.stdin.close()
    eq(B.p.wait(10), 0, 'exit status at EOF')
    check(pid_gone(r['pid']), 'spawned process survived the agent')
    raise SkipFinish()


@test
def stdin_eof_flushes_answers(A, tmp):
    big = os.path.join(tmp, 'big')
    data = os.urandom(3 << 20)
    with open(big, 'wb') as f:
        f.write(data)
    blob = b''.join(frame({'id': 100 + i, 'op': 'ping'}) for i in range(500))
    blob += frame({'id': 99, 'op': 'read_file', 'path': big})
    A.send_raw(blob)
    A.p.stdin.close()
    for i in range(500):
        check(A.result(100 + i, timeout=10).get('ok') is True, 'ping %d answered before exit' % i)
    eq(A.result(99, timeout=10).get('data'), data, 'read_file answered before exit')
    eq(A.p.wait(10), 0, 'exit status at EOF')
    raise SkipFinish()


# ---- files ------------------------------------------------------------------------------------


@test
def write_read_file(A, tmp):
    p = os.path.join(tmp, 'f')
    A.ok('write_file', path=p, data=b'hello world')
    eq(A.ok('read_file', path=p)['data'], b'hello world', 'read back')
    A.ok('write_file', path=p, data=b'short')
    eq(open(p, 'rb').read(), b'short', 'replace truncates')
    A.ok('write_file', path=p, data=b'+more', append=True)
    eq(A.ok('read_file', path=p)['data'], b'short+more', 'append')
    A.ok('write_file', path=p, data=b'', append=False)
    eq(os.path.getsize(p), 0, 'empty write')
    allb = bytes(range(256)) * 16
    A.ok('write_file', path=p, data=allb)
    r = A.ok('read_file', path=p)
    eq(r['data'], allb, 'binary round trip')
    check(isinstance(r['data'], bytes), 'data must be bin')
    big = os.urandom(2 * 1024 * 1024 + 7)
    A.ok('write_file', path=p, data=big)
    eq(A.ok('read_file', path=p)['data'], big, '2 MiB round trip')
    eq(open(p, 'rb').read(), big, '2 MiB on disk')


@test
def write_file_mode(A, tmp):
    p = os.path.join(tmp, 'm')
    A.ok('write_file', path=p, data=b'x')
    eq(stat.S_IMODE(os.stat(p).st_mode), 0o644, 'default mode')
    p2 = os.path.join(tmp, 'm2')
    A.ok('write_file', path=p2, data=b'x', mode=0o600)
    eq(stat.S_IMODE(os.stat(p2).st_mode), 0o600, 'mode 0600')
    p3 = os.path.join(tmp, 'm3')
    A.ok('write_file', path=p3, data=b'x', mode=0o777)
    eq(stat.S_IMODE(os.stat(p3).st_mode), 0o777, 'mode is exact (not reduced by the umask)')
    A.ok('write_file', path=p2, data=b'y', mode=0o755)
    eq(stat.S_IMODE(os.stat(p2).st_mode), 0o600, 'mode applies to new files only')
    A.err('write_file', 0, "'mode'", path=p, data=b'x', mode=0o10000)


@test
def read_file_errors(A, tmp):
    p = os.path.join(tmp, 'nope')
    A.err('read_file', errno.ENOENT, 'read_file %s: No such file or directory' % p, path=p)
    A.err('read_file', errno.EISDIR, None, path=tmp)
    A.err('read_file', errno.ENOTDIR, None, path='/etc/passwd/x')
    big = os.path.join(tmp, 'big')
    with open(big, 'wb') as f:
        f.truncate(READ_CAP + 1)
    A.err('read_file', 0, 'exceeds the 64 MiB read cap', path=big)
    with open(big, 'r+b') as f:
        f.truncate(READ_CAP)
    r = A.ok('read_file', path=big, timeout=60)
    check(len(r['data']) == READ_CAP and r['data'].count(0) == READ_CAP, 'file exactly at the read cap')
    del r
    # size-0 files of /proc are read to EOF
    r = A.ok('read_file', path='/proc/self/status')
    check(b'Pid:' in r['data'], '/proc/self/status read as empty')
    # a FIFO without a writer fails instead of blocking the agent
    fifo = os.path.join(tmp, 'fifo')
    os.mkfifo(fifo)
    t0 = time.monotonic()
    r = A.ok('read_file', path=fifo)
    check(time.monotonic() - t0 < 2, 'read_file of a FIFO blocked')
    eq(r['data'], b'', 'a FIFO without a writer reads as empty')


@test
def write_file_errors(A, tmp):
    A.err('write_file', errno.ENOENT, None, path=os.path.join(tmp, 'no/such/dir/f'), data=b'x')
    A.err('write_file', errno.EISDIR, None, path=tmp, data=b'x')
    A.err('write_file', 0, "missing 'data'", path=os.path.join(tmp, 'f'))
    fifo = os.path.join(tmp, 'fifo')
    os.mkfifo(fifo)
    t0 = time.monotonic()
    A.err('write_file', errno.ENXIO, None, path=fifo, data=b'x')
    check(time.monotonic() - t0 < 2, 'write_file to a FIFO blocked')


@test
def stat_op(A, tmp):
    f = os.path.join(tmp, 'f')
    with open(f, 'wb') as fh:
        fh.write(b'12345')
    os.chmod(f, 0o640)
    r = A.ok('stat', path=f)
    st = os.lstat(f)
    eq((r['type'], r['size'], r['mode'], r['mtime_ns']), ('file', 5, 0o640, st.st_mtime_ns), 'stat of a file')
    eq(A.ok('stat', path=tmp)['type'], 'dir', 'type of a directory')
    ln = os.path.join(tmp, 'ln')
    os.symlink('f', ln)
    r = A.ok('stat', path=ln)
    eq((r['type'], r['size']), ('symlink', 1), 'lstat of a symlink')
    os.symlink('missing', os.path.join(tmp, 'dangling'))
    eq(A.ok('stat', path=os.path.join(tmp, 'dangling'))['type'], 'symlink', 'dangling symlink')
    fifo = os.path.join(tmp, 'fifo')
    os.mkfifo(fifo)
    eq(A.ok('stat', path=fifo)['type'], 'other', 'type of a FIFO')
    eq(A.ok('stat', path='/dev/null')['type'], 'other', 'type of a device')
    p = os.path.join(tmp, 'nope')
    A.err('stat', errno.ENOENT, 'stat %s: No such file or directory' % p, path=p)
    A.err('stat', errno.ENOTDIR, None, path=f + '/x')


@test
def listdir_op(A, tmp):
    d = os.path.join(tmp, 'd')
    os.mkdir(d)
    eq(A.ok('listdir', path=d)['entries'], [], 'empty directory')
    names = ['b', 'a', 'C', '.hidden', 'z z', 'ü', '10', '9']
    for n in names:
        open(os.path.join(d, n), 'w').close()
    os.mkdir(os.path.join(d, 'sub'))
    r = A.ok('listdir', path=d)
    want = sorted(n.encode() for n in names + ['sub'])
    eq([e.encode() for e in r['entries']], want, 'sorted entries without . and ..')
    p = os.path.join(tmp, 'nope')
    A.err('listdir', errno.ENOENT, 'listdir %s' % p, path=p)
    A.err('listdir', errno.ENOTDIR, None, path=os.path.join(d, 'a'))
    many = os.path.join(tmp, 'many')
    os.mkdir(many)
    for i in range(3000):
        open(os.path.join(many, 'f%05d' % i), 'w').close()
    eq(A.ok('listdir', path=many)['entries'], ['f%05d' % i for i in range(3000)], '3000 entries')


@test
def mkdir_op(A, tmp):
    d = os.path.join(tmp, 'd')
    A.ok('mkdir', path=d)
    check(os.path.isdir(d), 'mkdir did not create')
    eq(stat.S_IMODE(os.stat(d).st_mode), 0o755, 'default mode')
    A.err('mkdir', errno.EEXIST, 'mkdir %s: File exists' % d, path=d)
    A.err('mkdir', errno.ENOENT, None, path=os.path.join(tmp, 'x/y/z'))
    deep = os.path.join(tmp, 'x/y/z/')
    A.ok('mkdir', path=deep, parents=True)
    check(os.path.isdir(deep), 'mkdir parents')
    A.ok('mkdir', path=deep, parents=True)  # existing is fine
    A.ok('mkdir', path=tmp + '//x//y', parents=True)
    m = os.path.join(tmp, 'm')
    A.ok('mkdir', path=m, mode=0o700)
    eq(stat.S_IMODE(os.stat(m).st_mode), 0o700, 'mode 0700')
    m2 = os.path.join(tmp, 'p/q')
    A.ok('mkdir', path=m2, mode=0o777, parents=True)
    eq(stat.S_IMODE(os.stat(m2).st_mode), 0o777, 'mode of the last component with parents')
    f = os.path.join(tmp, 'file')
    open(f, 'w').close()
    r = A.call('mkdir', path=os.path.join(f, 'sub'), parents=True)
    expect_err(r, errno.ENOTDIR, None, 'mkdir -p under a file')
    A.err('mkdir', errno.EEXIST, None, path=f, parents=True)
    A.err('mkdir', errno.ENOENT, None, path='')


@test
def unlink_op(A, tmp):
    f = os.path.join(tmp, 'f')
    open(f, 'w').close()
    A.ok('unlink', path=f)
    check(not os.path.exists(f), 'file not removed')
    A.err('unlink', errno.ENOENT, 'unlink %s: No such file or directory' % f, path=f)
    t = os.path.join(tmp, 'target')
    open(t, 'w').close()
    ln = os.path.join(tmp, 'ln')
    os.symlink(t, ln)
    A.ok('unlink', path=ln)
    check(not os.path.lexists(ln) and os.path.exists(t), 'symlink removed, target kept')
    d = os.path.join(tmp, 'd')
    os.mkdir(d)
    A.ok('unlink', path=d)
    check(not os.path.exists(d), 'empty directory not removed')
    os.mkdir(d)
    open(os.path.join(d, 'x'), 'w').close()
    A.err('unlink', errno.ENOTEMPTY, None, path=d)


@test
def rename_op(A, tmp):
    a, b = os.path.join(tmp, 'a'), os.path.join(tmp, 'b')
    with open(a, 'w') as f:
        f.write('A')
    A.ok('rename', **{'from': a, 'to': b})
    check(not os.path.exists(a) and open(b).read() == 'A', 'rename')
    A.err('rename', errno.ENOENT, 'rename %s -> %s: No such file or directory' % (a, b), **{'from': a, 'to': b})
    d = os.path.join(tmp, 'd')
    os.mkdir(d)
    open(os.path.join(d, 'x'), 'w').close()
    os.mkdir(os.path.join(tmp, 'e'))
    A.err('rename', errno.ENOTDIR, None, **{'from': os.path.join(tmp, 'e'), 'to': b})
    A.err('rename', 0, "missing 'to'", **{'from': b})


# ---- malformed input -------------------------------------------------------------------------------


def bad_body(A, body, want_id, contains=None, what=''):
    A.send_raw(raw_frame(body))
    r = A.result(want_id, timeout=10)
    expect_err(r, 0, contains, 'malformed request %s %s' % (what, short(body, 80)))


@test
def malformed_requests(A, tmp):
    pk = msgpack.packb
    # not a map / no usable id: answered with id 0
    for body, contains in [
        (pk([1, 2]), 'not a map'),
        (pk(7), 'not a map'),
        (pk('str'), 'not a map'),
        (pk({'op': 'ping'}), "no 'id'"),
        (pk({'id': 'seven', 'op': 'ping'}), "'id'"),
        (pk({'id': -1, 'op': 'ping'}), "'id'"),
        (pk({'id': 1 << 32, 'op': 'ping'}), "'id'"),
        (pk({'id': 1.5, 'op': 'ping'}), "'id'"),
        (b'\xc1', 'invalid msgpack byte'),
        (b'', 'input ends'),
        (b'\x81\xa2id', 'input ends'),
        (b'\x82\xa2id', 'declares'),
        (b'\xdf\xff\xff\xff\xff', 'declares'),      # map claiming 4G pairs
        (b'\xdd\x7f\xff\xff\xff', 'declares'),      # array claiming 2G elements
        (b'\x82\x01\x02\xa2op\xa4ping', 'key'),      # int key
    ]:
        bad_body(A, body, 0, contains)
        A.ok('ping')
    # problems after a valid id are answered with that id
    bad_body(A, pk({'id': 801, 'op': 'ping'}) + b'\x00', 801, 'trailing')
    bad_body(A, pk({'id': 802, 'op': 'ping', 'x': [[[[[[[[[[[[1]]]]]]]]]]]]}), 802, 'nesting')
    A.ok('ping')
    # with a valid id: answered with that id
    for req, contains in [
        ({'id': 901}, "no 'op'"),
        ({'id': 902, 'op': 5}, "'op' must be a str"),
        ({'id': 903, 'op': 'frobnicate'}, "unknown op 'frobnicate'"),
        ({'id': 904, 'op': 'x' * 100}, 'unknown op'),
        ({'id': 905, 'op': 'exec', 'argv': 'ls'}, "'argv' must be an array of str"),
        ({'id': 906, 'op': 'exec', 'argv': ['ls', 5]}, "'argv'"),
        ({'id': 907, 'op': 'exec', 'argv': []}, "'argv' is empty"),
        ({'id': 908, 'op': 'exec'}, "missing 'argv' or 'cmd'"),
        ({'id': 909, 'op': 'exec', 'argv': ['ls'], 'cmd': 'ls'}, 'not both'),
        ({'id': 910, 'op': 'exec', 'cmd': 5}, "'cmd' must be a str"),
        ({'id': 911, 'op': 'exec', 'cmd': 'true', 'env': ['A=1']}, "'env' must be a map"),
        ({'id': 912, 'op': 'exec', 'cmd': 'true', 'env': {'A': 1}}, "'env'"),
        ({'id': 913, 'op': 'exec', 'cmd': 'true', 'env': {'A=B': 'x'}}, "'env'"),
        ({'id': 914, 'op': 'exec', 'cmd': 'true', 'env': {'': 'x'}}, "'env'"),
        ({'id': 915, 'op': 'exec', 'cmd': 'true', 'timeout_ms': '5'}, "'timeout_ms' must be an unsigned integer"),
        ({'id': 916, 'op': 'exec', 'cmd': 'true', 'timeout_ms': -5}, "negative"),
        ({'id': 917, 'op': 'exec', 'cmd': 'true', 'env_clear': 'yes'}, "'env_clear' must be a bool"),
        ({'id': 918, 'op': 'exec', 'cmd': 'true', 'stdin': 5}, "'stdin' must be bin"),
        ({'id': 919, 'op': 'exec', 'cmd': 'true', 'cwd': b'/'}, "'cwd' must be a str"),
        ({'id': 920, 'op': 'exec', 'argv': ['ec\x00ho']}, 'NUL'),
        ({'id': 921, 'op': 'read_file'}, "missing 'path'"),
        ({'id': 922, 'op': 'read_file', 'path': 5}, "'path' must be a str"),
        ({'id': 923, 'op': 'read_file', 'path': '/etc/\x00passwd'}, 'NUL'),
        ({'id': 924, 'op': 'write_file', 'path': '/tmp/x', 'data': 5}, "'data' must be bin"),
        ({'id': 925, 'op': 'write_file', 'path': '/tmp/x', 'data': b'', 'append': 1}, "'append' must be a bool"),
        ({'id': 926, 'op': 'write_file', 'path': '/tmp/x', 'data': b'', 'mode': '644'}, "'mode'"),
        ({'id': 927, 'op': 'mkdir', 'path': '/tmp/x', 'parents': 'yes'}, "'parents'"),
        ({'id': 928, 'op': 'wait'}, "missing 'proc'"),
        ({'id': 929, 'op': 'wait', 'proc': 'one'}, "'proc' must be an unsigned integer"),
        ({'id': 930, 'op': 'kill', 'proc': 1, 'signal': 'TERM'}, "'signal' must be an integer"),
        ({'id': 931, 'op': 'stdin_write', 'proc': 1}, "missing 'data'"),
        ({'id': 932, 'op': 'rename', 'from': '/a'}, "missing 'to'"),
        ({'id': 933, 'op': 'rename', 'to': '/a'}, "missing 'from'"),
        ({'id': 934, 'op': 'wait', 'proc': 1, 'timeout_ms': 1.5}, "'timeout_ms'"),
    ]:
        A.send(req)
        r = A.result(req['id'], timeout=10)
        expect_err(r, None, contains, 'request %s' % short(req, 100))
        check(r['errno'] in (0, errno.ESRCH), 'errno for a bad request: %s' % short(r))
        A.ok('ping')
    # duplicate key (msgpack-python will not build one; do it by hand)
    body = b'\x83\xa2id\xcd\x03\xe7\xa2op\xa4ping\xa2op\xa4ping'
    bad_body(A, body, 999, 'duplicate key')
    # a path that is not valid UTF-8: the error message still is
    body = b'\x83\xa2id\xcd\x03\xe8\xa2op\xa9read_file\xa4path' + mp_str_raw(b'/nonexistent/\xff\xfe')
    A.send_raw(raw_frame(body))
    expect_err(A.result(1000), errno.ENOENT, 'read_file /nonexistent/', 'non-UTF-8 path')
    # nil means absent
    r = A.ok('exec', argv=['true'], timeout_ms=None, env=None, cwd=None)
    eq(r['exit_code'], 0, 'nil options')


@test
def oversize_frame_header(A, tmp):
    A.ok('ping')
    A.send_raw(struct.pack('>I', FRAME_MAX_BODY + 1) + b'\x80')
    r = A.result(0, timeout=10)
    expect_err(r, 0, 'limit', 'oversize frame header')
    rc = A.p.wait(10)
    check(rc >= 0, 'agent died of signal %d' % -rc)
    eq(rc, 1, 'exit status after an oversize frame (a clean close)')
    raise SkipFinish()


@test
def huge_frame_header_does_not_allocate(A, tmp):
    A.send_raw(b'\xff\xff\xff\xff')
    expect_err(A.result(0, timeout=10), 0, 'over the', 'frame header 0xffffffff')
    rc = A.p.wait(10)
    eq(rc, 1, 'exit status after an oversize frame')
    raise SkipFinish()


@test
def truncated_frame_at_eof(A, tmp):
    A.ok('ping')
    A.send_raw(struct.pack('>I', 100) + b'\x82\xa2')
    A.p.stdin.close()
    eq(A.p.wait(10), 0, 'exit status after EOF inside a frame')
    raise SkipFinish()


@test
def big_request_frame(A, tmp):
    # a 40 MiB write_file request in one frame
    p = os.path.join(tmp, 'big')
    data = os.urandom(1 << 20) * 40
    A.ok('write_file', path=p, data=data, timeout=60)
    eq(os.path.getsize(p), len(data), 'size written')
    r = A.ok('read_file', path=p, timeout=60)
    check(r['data'] == data, '40 MiB read back differs')


@test
def ops_burst(A, tmp):
    f = os.path.join(tmp, 'f')
    with open(f, 'w') as fh:
        fh.write('burst')
    blob = bytearray()
    kinds = {}
    first = A.next_id
    for i in range(3000):
        rid = first + i
        k = i % 5
        kinds[rid] = k
        if k == 0:
            blob += frame({'id': rid, 'op': 'ping'})
        elif k == 1:
            blob += frame({'id': rid, 'op': 'stat', 'path': f})
        elif k == 2:
            blob += frame({'id': rid, 'op': 'read_file', 'path': f})
        elif k == 3:
            blob += frame({'id': rid, 'op': 'listdir', 'path': tmp})
        else:
            blob += frame({'id': rid, 'op': 'exec', 'argv': ['echo', str(rid)]}) if i % 100 == 4 else \
                frame({'id': rid, 'op': 'stat', 'path': '/nonexistent'})
    A.next_id = first + 3000
    A.send_raw(bytes(blob))
    for rid, k in kinds.items():
        r = A.result(rid, timeout=60)
        if k == 4 and (rid - first) % 100 != 4:
            expect_err(r, errno.ENOENT, None, 'burst stat')
            continue
        check(r.get('ok') is True, 'burst %d: %s' % (rid, short(r)))
        if k == 2:
            eq(r['data'], b'burst', 'burst read_file')
        if k == 4:
            eq(r['stdout'], b'%d\n' % rid, 'burst exec')
    with A.cv:
        extra = {k: v for k, v in A.resp.items() if v}
    eq(extra, {}, 'responses beyond one per request')


# ---- --port with a unix socket ----------------------------------------------------------------


def sock_read_frame(s, timeout=10):
    s.settimeout(timeout)
    buf = b''
    while len(buf) < 4:
        c = s.recv(4 - len(buf))
        if not c:
            return None
        buf += c
    n = struct.unpack('>I', buf)[0]
    body = b''
    while len(body) < n:
        c = s.recv(n - len(body))
        if not c:
            return None
        body += c
    return msgpack.unpackb(body, raw=False)


@test
def port_socket_reconnect(A, tmp):
    path = os.path.join(tmp, 'agent.sock')
    # the agent starts before the socket exists and keeps retrying
    p = subprocess.Popen([AGENT, '--port', path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(4)
        srv.settimeout(5)
        c1, _ = srv.accept()
        eq(sock_read_frame(c1).get('op'), 'hello', 'first message on connect')
        c1.sendall(frame({'id': 1, 'op': 'ping'}))
        eq(sock_read_frame(c1), {'id': 1, 'ok': True}, 'ping on the first connection')
        # an exec in flight when the host goes away must not be answered on the
        # next connection (ids restart there)
        c1.sendall(frame({'id': 2, 'op': 'exec', 'cmd': 'sleep 0.5; echo stale'}))
        time.sleep(0.1)
        c1.close()
        c2, _ = srv.accept()
        eq(sock_read_frame(c2).get('op'), 'hello', 'hello again after a reconnect')
        c2.sendall(frame({'id': 2, 'op': 'ping'}))
        eq(sock_read_frame(c2), {'id': 2, 'ok': True}, 'ping on the second connection')
        try:
            late = sock_read_frame(c2, timeout=1.0)
        except socket.timeout:
            late = None
        check(late is None, 'stale response delivered on the new connection: %s' % short(late))
        c2.sendall(frame({'id': 3, 'op': 'exec', 'argv': ['echo', 'fine']}))
        eq(sock_read_frame(c2).get('stdout'), b'fine\n', 'exec on the second connection')
        c2.close()
        srv.close()
        check(p.poll() is None, 'agent exited when the host went away')
    finally:
        p.terminate()
        p.wait(5)


# ---- resume ----------------------------------------------------------------------------


@test
def resume_outside_a_vm_touches_nothing(A, tmp):
    before = time.time_ns()
    # a time far in the past: applied, it would be obvious on the next line
    r = A.ok('resume', time_ns=86400 * 10**9, entropy=os.urandom(64))
    after = time.time_ns()
    eq(sorted(r), ['applied', 'id', 'ok', 'reseeded', 'time_ns'], 'resume response keys')
    eq(r['applied'], False, 'applied (not PID 1: the host clock and pool are not the agent\'s)')
    eq(r['reseeded'], False, 'reseeded')
    check(before - 10**9 <= r['time_ns'] <= after + 10**9,
          'time_ns %d is the agent\'s clock (between %d and %d)' % (r['time_ns'], before, after))
    A.ok('resume', time_ns=time.time_ns())  # entropy is optional


@test
def resume_errors(A, tmp):
    A.err('resume', 0, "'time_ns' (the host's CLOCK_REALTIME in ns) is required")
    A.err('resume', 0, 'time_ns', time_ns='now')
    A.err('resume', 0, 'not a time after 1970', time_ns=-5)
    A.err('resume', 0, "'entropy' has 513 bytes, at most 512", time_ns=time.time_ns(), entropy=b'x' * 513)
    A.err('resume', 0, 'entropy', time_ns=time.time_ns(), entropy=7)


@test
def identity_outside_a_vm_renames_nothing(A, tmp):
    host = os.uname().nodename
    r = A.ok('identity', hostname='warm-7', rng_seed='18446744073709551615', machine_id=True)
    eq(sorted(r), ['hostname', 'id', 'machine_id', 'ok'], 'identity response keys')
    eq(r['hostname'], 'warm-7', 'hostname')
    eq(r['machine_id'], '', 'no machine-id written outside a VM')
    eq(os.uname().nodename, host, 'the host keeps its name')
    A.ok('identity', hostname='x' * 64)  # rng_seed and machine_id are optional


@test
def identity_errors(A, tmp):
    A.err('identity', 0, "'hostname'")
    A.err('identity', 0, "'hostname' must be 1 to 64 bytes, got 65", hostname='x' * 65)
    A.err('identity', 0, "'hostname' must be 1 to 64 bytes, got 0", hostname='')
    A.err('identity', 22, "'rng_seed' \"12a\" is not a decimal number", hostname='a', rng_seed='12a')
    A.err('identity', 22, "is not a decimal number", hostname='a', rng_seed='1' * 21)
    A.err('identity', 0, 'machine_id', hostname='a', machine_id='yes')


class SkipFinish(Exception):
    pass


def main(tests=None):
    tests = TESTS if tests is None else tests
    if not AGENT or not os.access(AGENT, os.X_OK):
        print('usage: test_agent.py PATH/TO/provium-agent [TEST...]', file=sys.stderr)
        return 2
    passed = failed = 0
    root = tempfile.mkdtemp(prefix='provium-agent-test-')
    os.umask(0o022)
    try:
        for fn in tests:
            name = fn.__name__
            if ONLY and not any(o in name for o in ONLY):
                continue
            tmp = os.path.join(root, name)
            os.mkdir(tmp)
            t0 = time.monotonic()
            A = None
            try:
                A = Agent()
                try:
                    fn(A, tmp)
                    A.finish()
                except SkipFinish:
                    pass
                passed += 1
                print('ok   %-40s %.2fs' % (name, time.monotonic() - t0), flush=True)
            except Exception as ex:  # noqa: BLE001 - every failure is reported
                failed += 1
                print('FAIL %-40s %s' % (name, ex), flush=True)
                if not isinstance(ex, Fail):
                    traceback.print_exc()
            finally:
                if A:
                    A.kill()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print('agent: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
