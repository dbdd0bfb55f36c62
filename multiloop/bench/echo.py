"""Echo-server benchmarks over loopback TCP and Unix sockets: the loop's transports, protocols and streams.

The server runs in the loop under test; the load comes from :mod:`multiloop.bench.echo_client` in a second
process (same client for every loop; see its docstring for why). A sample is one job of ``n`` requests:
timed from handing the job to the client until its answer, with the *server loop thread's* user CPU over
the same window (``RUSAGE_THREAD`` on Linux). The rate is requests/s; the CPU table reports user CPU per
request, which is what a loop's own code costs, and the thread's user+sys CPU per request: Linux splits a thread's
CPU time into user and sys by sampling clock ticks, so on an echo server (mostly sys time) one sample's user
figure can be off by half, while user+sys is exact and also counts the syscalls a loop chooses to make. The client
reports its own CPU time and wake-ups, which tell whether a row's rate is the client's (see
:mod:`multiloop.bench.echo_client`). The client checks every echoed byte; a sample with a wrong byte fails its
cell.

While a loop's ``create_server`` raises NotImplementedError (networking not merged yet), its cells are
skipped with that reason rather than failing.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Any

from .harness import Sample, Skip, Stopwatch, verify

CONNECTIONS = 10
MESSAGE_SIZE = 1024
LARGE_MESSAGE_SIZE = 64 * 1024


class _ClientProcess:
    """The load generator process, started on first use and kept for the whole run (not per sample)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        """Start the process and wait until it answers, so its start-up is never inside a timed window."""
        self.request({"ping": True})

    def request(self, job: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo_client.py")
                # -I: the client must not import anything from this directory or the user's site.
                self._proc = subprocess.Popen([sys.executable, "-I", script], stdin=subprocess.PIPE,
                                              stdout=subprocess.PIPE, text=True, bufsize=1)
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write(json.dumps(job) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the echo client process died")
        result = json.loads(line)
        if "error" in result:
            raise RuntimeError(f"echo client: {result['error']}")
        return result

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


_client = _ClientProcess()
atexit.register(_client.close)


def close_client() -> None:
    """Stop the load generator process (the suite calls this when it is done)."""
    _client.close()


async def _drive(job: dict[str, Any]) -> Sample:
    """Hand ``job`` to the client from a plain thread (the same on every loop: no executor, no pipe
    transport) and time the server loop until the answer comes back through call_soon_threadsafe."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[dict[str, Any]] = loop.create_future()

    def deliver(result: Any, exc: BaseException | None) -> None:
        if answer.done():
            return
        if exc is not None:
            answer.set_exception(exc)
        else:
            answer.set_result(result)

    def worker() -> None:
        try:
            result, exc = _client.request(job), None
        except BaseException as e:  # noqa: BLE001 - handed to the loop
            result, exc = None, e
        loop.call_soon_threadsafe(deliver, result, exc)

    with Stopwatch() as sw:
        t = threading.Thread(target=worker, name="bench-echo-job")
        t.start()
        result = await answer
    t.join()
    verify(result["requests"] == job["requests"], f"{result['requests']} of {job['requests']} requests echoed")
    verify(result["mismatches"] == 0, f"{result['mismatches']} echoed chunks differ from what was sent")
    return sw.sample(int(result["requests"]), peer_cpu=float(result["cpu"]), peer_waits=int(result["waits"]))


class _EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _stream_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _serve(kind: str, family: str, n: int, conns: int = CONNECTIONS, size: int = MESSAGE_SIZE) -> Sample:
    loop = asyncio.get_running_loop()
    tmpdir = None
    try:
        if family == "unix":
            tmpdir = tempfile.mkdtemp(prefix="mlbench-")
            path = os.path.join(tmpdir, "echo.sock")
            if kind == "protocol":
                server = await loop.create_unix_server(_EchoProtocol, path)
            else:
                server = await asyncio.start_unix_server(_stream_handler, path)
            addr: Any = path
        else:
            if kind == "protocol":
                server = await loop.create_server(_EchoProtocol, "127.0.0.1", 0)
            else:
                server = await asyncio.start_server(_stream_handler, "127.0.0.1", 0)
            addr = list(server.sockets[0].getsockname()[:2])
    except NotImplementedError as exc:
        raise Skip(f"{type(loop).__name__}.{'create_unix_server' if family == 'unix' else 'create_server'} "
                   f"raises NotImplementedError{': ' + str(exc) if str(exc) else ''} (networking not there yet)"
                   ) from None
    try:
        async with server:
            _client.ensure_started()  # blocks this loop briefly, once per run, outside the timed part
            return await _drive({"family": family, "addr": addr, "conns": conns, "requests": n, "size": size})
    finally:
        if tmpdir is not None:
            for name in os.listdir(tmpdir):
                os.unlink(os.path.join(tmpdir, name))
            os.rmdir(tmpdir)


async def tcp_echo_protocol(n: int) -> Sample:
    """TCP echo, ``asyncio.Protocol`` server (``transport.write`` in ``data_received``); ``n`` requests of
    1 KiB over 10 loopback connections from a client process, one request in flight per connection."""
    return await _serve("protocol", "inet", n)


async def tcp_echo_streams(n: int) -> Sample:
    """TCP echo, asyncio streams server (``reader.read`` / ``writer.write`` / ``drain``); load as above."""
    return await _serve("streams", "inet", n)


async def tcp_echo_1conn(n: int) -> Sample:
    """TCP echo, protocol server, a single connection: one request per loop pass, no batching of ready
    fds, so CPU per request is the cost of a whole pass (wait, dispatch, read, write)."""
    return await _serve("protocol", "inet", n, conns=1)


async def unix_echo_protocol(n: int) -> Sample:
    """Unix socket echo, ``asyncio.Protocol`` server; load as tcp_echo_protocol."""
    return await _serve("protocol", "unix", n)


async def tcp_echo_64k_protocol(n: int) -> Sample:
    """TCP echo of 64 KiB messages, ``asyncio.Protocol`` server; 10 connections, one message in flight per
    connection (large transfers: read sizes, copies, partial writes and the write buffer)."""
    return await _serve("protocol", "inet", n, size=LARGE_MESSAGE_SIZE)


async def tcp_echo_64k_streams(n: int) -> Sample:
    """TCP echo of 64 KiB messages, asyncio streams server; load as tcp_echo_64k_protocol."""
    return await _serve("streams", "inet", n, size=LARGE_MESSAGE_SIZE)


async def unix_echo_streams(n: int) -> Sample:
    """Unix socket echo, asyncio streams server; load as tcp_echo_protocol."""
    return await _serve("streams", "unix", n)


BENCHMARKS = [
    ("tcp_echo_protocol", tcp_echo_protocol, 2_000, "requests", "io", "wall"),
    ("tcp_echo_streams", tcp_echo_streams, 2_000, "requests", "io", "wall"),
    ("tcp_echo_1conn", tcp_echo_1conn, 2_000, "requests", "io", "wall"),
    ("tcp_echo_64k_protocol", tcp_echo_64k_protocol, 200, "64 KiB requests", "io", "wall"),
    ("tcp_echo_64k_streams", tcp_echo_64k_streams, 200, "64 KiB requests", "io", "wall"),
    ("unix_echo_protocol", unix_echo_protocol, 2_000, "requests", "io", "wall"),
    ("unix_echo_streams", unix_echo_streams, 2_000, "requests", "io", "wall"),
]
#: Bytes each request carries in each direction (for MB/s).
MESSAGE_BYTES = {"tcp_echo_64k_protocol": LARGE_MESSAGE_SIZE, "tcp_echo_64k_streams": LARGE_MESSAGE_SIZE}
