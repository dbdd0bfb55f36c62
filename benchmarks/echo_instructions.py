"""Instructions per 1 KiB echo request in the server process: a low-noise figure on a shared, noisy machine.

Facts: on a machine shared with other builds, user-CPU-per-request medians of ``python -m multiloop bench`` span
1.5x-5x between rounds; an instruction count does not depend on the load. The server runs here (traced); the
client is a plain blocking-socket loop in a child process (not traced), the same for every loop. Start-up,
server creation and imports are the same at any request count, so the difference between two counts, divided by
the difference in requests, is the cost of one request. How the numbers in docs/performance.md ("Stream engine")
were taken (``-X`` nothing, run from outside the source tree so the installed build is used)::

    for n in 1000 5000; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null --trace-children=no \\
            python benchmarks/echo_instructions.py LOOP KIND $n 2>&1 | grep Collected
    done    # (I(5000) - I(1000)) / 4000

LOOP: ``asyncio``, ``uvloop`` or a multiloop backend name; KIND: ``tcp``, ``unix`` (Protocol echo) or
``streams``, ``unix_streams`` (asyncio streams echo). An optional fourth argument is the message size in bytes
(default 1024); with it, the streams handler also awaits ``drain()`` after each write, as the shipped
``tcp_echo_64k_streams`` benchmark's does (docs/performance.md, "64 KiB echo", used N = 200 and 1000). User-space
instructions only: what a large read costs the kernel (page faults when each read allocates fresh memory) does not
show; compare ``getrusage`` system time and ``ru_minflt`` of the server process for that.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from typing import Any

CLIENT = r"""
import socket, sys
family, address, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if family == "unix":
    s = socket.socket(socket.AF_UNIX)
    s.connect(address)
else:
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
message = b"x" * int(sys.argv[4])
for _ in range(n):
    s.sendall(message)
    got = 0
    while got < len(message):
        got += len(s.recv(65536))
s.close()
"""


async def serve(kind: str, n: int, size: int | None = None) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

        def connection_lost(self, exc: BaseException | None) -> None:
            done.set_result(None)

    async def echo_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            if size is not None:
                await writer.drain()
        writer.close()
        done.set_result(None)

    unix = kind.startswith("unix")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "echo.sock")
        server: asyncio.AbstractServer
        if kind.endswith("streams"):
            server = await (asyncio.start_unix_server(echo_stream, path) if unix
                            else asyncio.start_server(echo_stream, "127.0.0.1", 0))
        else:
            server = await (loop.create_unix_server(Echo, path) if unix
                            else loop.create_server(Echo, "127.0.0.1", 0))
        address = path if unix else f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        client = subprocess.Popen([sys.executable, "-c", CLIENT, "unix" if unix else "tcp", address, str(n),
                                   str(size or 1024)])
        await done
        server.close()
        client.wait()


def main() -> None:
    loop_name, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    size = int(sys.argv[4]) if len(sys.argv) > 4 else None
    if loop_name == "asyncio":
        loop = asyncio.new_event_loop()
    elif loop_name == "uvloop":
        import uvloop  # type: ignore[import-not-found, unused-ignore]
        loop = uvloop.new_event_loop()
    else:
        import multiloop
        loop = multiloop.new_loop(backend=loop_name)
    try:
        loop.run_until_complete(serve(kind, n, size))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
