"""The ``dbt`` that dagster-dbt runs when the dbt fork server is up (taxi_platform/dbt_server.py).

Standard library only, and run with ``python -SE``: it starts in milliseconds. It hands its
arguments, working directory, environment and standard streams to the server, which forks a
process that already has dbt imported; that process writes dbt's output straight into this
one's stdout (the pipe dagster-dbt reads). This process forwards SIGINT and SIGTERM to it and
exits with its exit code. When the server cannot be reached it becomes the real ``dbt``
(``os.execv``), so a run never depends on the server being there.

``taxi_platform/dbt_server.py`` writes this file, with SOCKET and REAL_DBT filled in, as an
executable script beside the server's socket.
"""

import json
import os
import signal
import socket
import struct
import sys

SOCKET = ""  # the server's Unix socket (filled in when the script is written)
REAL_DBT = ""  # the dbt executable to become when the server cannot be reached


def _request(sock: socket.socket) -> None:
    payload = json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    # the length first, with stdin, stdout and stderr attached, then the rest
    socket.send_fds(sock, [struct.pack("!Q", len(payload))], [0, 1, 2])
    sock.sendall(payload)


def main() -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(SOCKET)
    except OSError:
        sock.close()
        os.execv(REAL_DBT, [REAL_DBT, *sys.argv[1:]])
    _request(sock)
    replies = sock.makefile("r")
    child = 0

    def forward(signum, _frame):
        if child:
            os.kill(child, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    for line in replies:  # "pid <n>", then "exit <code>"
        what, _, value = line.strip().partition(" ")
        if what == "pid":
            child = int(value)
        elif what == "exit":
            return int(value)
    sys.stderr.write(f"dbt's process (pid {child or 'unknown'}) ended without an exit code "
                     "(killed?); see the output above\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
