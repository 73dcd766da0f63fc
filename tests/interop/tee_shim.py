"""stdin tee for a stdio MCP server: `python tee_shim.py LOGFILE CMD [ARGS...]`.

The shim process execs CMD, so the server keeps the pid (and the parent-death signal) the
gateway gave its child, and its stdout goes straight to the gateway. A forked copier reads the
real stdin and, for each line, appends it to LOGFILE (flushed) before passing it on to the
server through a pipe: once a line is in the log, the server has it or is about to.
The copier dies with the server (PR_SET_PDEATHSIG) and ends the server's stdin at EOF.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def copier(log_path: str, out_fd: int, server_pid: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != server_pid:  # the server is already gone
        os._exit(0)
    # Hold no end of the gateway's stdout/stderr pipes: only the server's copies count.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    out = os.fdopen(out_fd, "wb", buffering=0)
    with open(log_path, "ab", buffering=0) as log:
        for line in sys.stdin.buffer:
            log.write(line if line.endswith(b"\n") else line + b"\n")
            try:
                out.write(line)
            except BrokenPipeError:
                break
    os._exit(0)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: tee_shim.py LOGFILE CMD [ARGS...]")
    log_path, argv = sys.argv[1], sys.argv[2:]
    read_fd, write_fd = os.pipe()
    server_pid = os.getpid()
    if os.fork() == 0:
        os.close(read_fd)
        copier(log_path, write_fd, server_pid)
    os.close(write_fd)
    os.dup2(read_fd, 0)
    os.close(read_fd)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
