#!/usr/bin/python3
"""Drives a command through a pseudo-terminal, as a person at a terminal would.

usage: pty_drive.py SCRIPT -- COMMAND...

SCRIPT is a file of steps, one per line:
  expect TEXT      wait (up to the step timeout) until TEXT has appeared in
                   the output since the last expect matched
  send TEXT        type TEXT (\\n, \\t, \\x03 (^C), \\x04 (^D) are escapes)
  timeout SECONDS  the wait of the following expects (default 60)
  sleep SECONDS    pause
  exit CODE        wait for the command to end, and check its exit status
Prints the whole transcript on stdout; exits 0 if every step held, else 1
with the step that failed on stderr."""
import os, pty, select, signal, sys, time, codecs

def main():
    sep = sys.argv.index("--")
    steps = open(sys.argv[1]).read().splitlines()
    cmd = sys.argv[sep + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    out = b""
    seen = 0  # output before this offset was matched already
    wait = 60.0

    def read_some(until):
        nonlocal out
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return False
            try:
                data = os.read(fd, 65536)
            except OSError:
                return None  # the command ended
            if not data:
                return None
            out += data
            return True

    def fail(msg):
        sys.stdout.write(out.decode("utf-8", "replace"))
        sys.stderr.write("pty_drive: " + msg + "\n")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        sys.exit(1)

    for line in steps:
        if not line.strip() or line.startswith("#"):
            continue
        word, _, arg = line.partition(" ")
        if word == "timeout":
            wait = float(arg)
        elif word == "sleep":
            time.sleep(float(arg))
        elif word == "send":
            os.write(fd, codecs.decode(arg, "unicode_escape").encode("utf-8"))
        elif word == "expect":
            want = codecs.decode(arg, "unicode_escape").encode("utf-8")
            until = time.monotonic() + wait
            while want not in out[seen:]:
                r = read_some(until)
                if r is None or r is False:
                    fail("expected %r %s" % (arg, "but the command ended" if r is None else "within %gs" % wait))
            seen = out.index(want, seen) + len(want)
        elif word == "exit":
            until = time.monotonic() + wait
            while read_some(until):
                pass
            end = time.monotonic() + 5
            while True:
                p, status = os.waitpid(pid, os.WNOHANG)
                if p:
                    break
                if time.monotonic() > end:
                    fail("the command did not end")
                time.sleep(0.05)
            code = os.waitstatus_to_exitcode(status)
            if code != int(arg):
                fail("exit status %d, expected %s" % (code, arg))
            pid_done = True
        else:
            fail("unknown step " + line)
    sys.stdout.write(out.decode("utf-8", "replace"))

main()
