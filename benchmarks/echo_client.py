"""Load generator for the echo benchmarks: a separate process, standard library only, no asyncio.

Why a second process: the number we want is the *server's* cost per request (the user CPU of the
server's loop thread), and the same client must load every loop identically. A client inside the loop under
test would add its own loop cost to the server's and make a fast loop look fast twice. This client is the
same for every column: non-blocking sockets on the platform's default selector, ``conns`` connections, each
sending a ``size``-byte message and waiting for the whole echo before sending the next (one request in
flight per connection), until ``requests`` echoes have come back in total.

Protocol: one JSON object per line on stdin (a job, or ``{"ping": true}`` to check the process is up), one
JSON line on stdout per job (the result). EOF on stdin ends the process.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time


def run_job(job: dict) -> dict:
    family = socket.AF_UNIX if job["family"] == "unix" else socket.AF_INET
    addr = job["addr"] if family == socket.AF_UNIX else tuple(job["addr"])
    conns, total, size = int(job["conns"]), int(job["requests"]), int(job["size"])
    msg = b"x" * size
    sel = selectors.DefaultSelector()
    socks = []
    t0 = time.perf_counter()
    try:
        for _ in range(conns):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.connect(addr)
            if family == socket.AF_INET:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            socks.append(s)
        sent = done = 0
        pending = {}  # socket -> bytes still expected back
        for s in socks:
            if sent < total:
                s.sendall(msg)  # small message, empty socket buffer: never blocks in practice
                sent += 1
                pending[s] = size
                sel.register(s, selectors.EVENT_READ)
        while done < total:
            for key, _ in sel.select(30.0) or _timeout():
                s = key.fileobj
                data = s.recv(65536)
                if not data:
                    raise ConnectionError("server closed the connection mid-benchmark")
                left = pending[s] - len(data)
                if left > 0:
                    pending[s] = left
                    continue
                done += 1
                if sent < total:
                    s.sendall(msg)
                    sent += 1
                    pending[s] = size
                else:
                    sel.unregister(s)
        wall = time.perf_counter() - t0
    finally:
        sel.close()
        for s in socks:
            s.close()
    return {"requests": done, "wall": wall}


def _timeout() -> list:
    raise TimeoutError("no echo for 30 s: the server under test is stuck")


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            job = json.loads(line)
            result = {"pong": True} if job.get("ping") else run_job(job)
        except Exception as exc:  # noqa: BLE001 - report, keep serving the next job
            result = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
