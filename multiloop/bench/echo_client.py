"""Load generator for the echo benchmarks: a separate process, standard library only, no asyncio.

Why a second process: the number we want is the *server's* cost per request (the user CPU of the server's
loop thread), and the same client must load every loop identically. A client inside the loop under test
would add its own loop cost to the server's and make a fast loop look fast twice. This client is the same for
every column: non-blocking sockets on the platform's default selector, ``conns`` connections, each sending a
``size``-byte message and waiting for the whole echo before sending the next (one request in flight per
connection), until ``requests`` echoes have come back in total. Every echoed byte is compared with what was
sent (each request carries its own number, so a lost, repeated or reordered chunk is caught).

It also reports its own CPU time and how many times it waited (``select`` calls) during the job. On a machine
with few cores the client can be the bottleneck: then the wall-clock rate is the client's. A server that
answers each request sooner is then asleep more often when the next request arrives, and the client's send
pays for waking it (on a virtual machine, most likely an interrupt to the other virtual CPU): more client CPU per request,
and a *lower* rate. These numbers, with the server's sleeps per request, show when that is what a row measures.

Protocol: one JSON object per line on stdin (a job, or ``{"ping": true}`` to check the process is up), one
JSON line on stdout per job (the result). EOF on stdin ends the process. Runs as a script (``python -I``).
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
import time


class _Conn:
    __slots__ = ("sock", "payload", "out", "got", "number")

    def __init__(self, sock: socket.socket, size: int) -> None:
        self.sock = sock
        self.payload = bytearray(os.urandom(size))
        self.out = memoryview(b"")
        self.got = 0
        self.number = 0

    def next_request(self) -> None:
        self.number += 1
        # The request's number in its first bytes: an echo of an older request does not compare equal.
        stamp = self.number.to_bytes(8, "little")
        self.payload[:len(stamp)] = stamp[:len(self.payload)]
        self.out = memoryview(bytes(self.payload))
        self.got = 0


def run_job(job: dict) -> dict:
    family = socket.AF_UNIX if job["family"] == "unix" else socket.AF_INET
    addr = job["addr"] if family == socket.AF_UNIX else tuple(job["addr"])
    conns, total, size = int(job["conns"]), int(job["requests"]), int(job["size"])
    sel = selectors.DefaultSelector()
    clients: list[_Conn] = []
    # One reused receive buffer, compared in place: recv(256 KiB) allocates (in a fresh process, an mmap and a
    # page fault per 4 KiB that arrives) and slicing the payload copies it: client work that made the 64 KiB
    # rows measure the client more than the server.
    rview = memoryview(bytearray(262144))
    t0 = time.perf_counter()
    c0 = time.process_time()
    mismatches = waits = 0
    try:
        for _ in range(conns):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.connect(addr)
            if family == socket.AF_INET:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            clients.append(_Conn(s, size))
        sent = done = 0
        for c in clients:
            if sent < total:
                c.next_request()
                sent += 1
                sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        while done < total:
            waits += 1
            for key, events in sel.select(30.0) or _timeout():
                c = key.data
                if events & selectors.EVENT_WRITE and c.out:
                    try:
                        n = c.sock.send(c.out)
                    except BlockingIOError:
                        n = 0
                    c.out = c.out[n:]
                    if not c.out:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                if not events & selectors.EVENT_READ:
                    continue
                n = c.sock.recv_into(rview)
                if not n:
                    raise ConnectionError("server closed the connection mid-benchmark")
                if not c.payload.startswith(rview[:n], c.got):  # False past the end, too
                    mismatches += 1
                c.got += n
                if c.got > size:
                    raise ConnectionError(f"server echoed {c.got} bytes for a {size}-byte request")
                if c.got < size:
                    continue
                done += 1
                if sent < total:
                    c.next_request()
                    sent += 1
                    sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
                else:
                    sel.unregister(c.sock)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
    finally:
        sel.close()
        for c in clients:
            c.sock.close()
    return {"requests": done, "wall": wall, "mismatches": mismatches, "cpu": cpu, "waits": waits}


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
