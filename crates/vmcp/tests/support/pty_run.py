"""Run a command on a pseudo-terminal, the way a user at a terminal would.

pty_run.py ANSWER_AFTER ANSWER -- CMD...: waits for ANSWER_AFTER in the output and for the
terminal's echo to be switched off, types ANSWER and Enter, then prints everything the terminal
showed and exits with the command's status. Used by the repository tests (secrets are asked
without echo; progress bars appear on a terminal only). Without ANSWER_AFTER ("-") it only
records the output.
"""
import os
import pty
import select
import sys
import termios
import time

DEADLINE = time.monotonic() + 60


def main():
    wait_for, answer = sys.argv[1].encode(), sys.argv[2].encode()
    argv = sys.argv[sys.argv.index("--") + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    out = b""
    answered = wait_for == b"-"
    asked_at = None
    while time.monotonic() < DEADLINE:
        if not answered and wait_for in out:
            asked_at = asked_at or time.monotonic()
            # Type once echo is off; a program that never turns it off gets the answer anyway
            # after a while, so that the echo shows in the output and the test fails.
            if not termios.tcgetattr(fd)[3] & termios.ECHO or time.monotonic() - asked_at > 5:
                os.write(fd, answer + b"\n")
                answered = True
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    if time.monotonic() >= DEADLINE:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(out)
    sys.exit(os.waitstatus_to_exitcode(status))


main()
