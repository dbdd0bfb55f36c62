"""Memory per idle TCP connection, multiloop (any backend) against stock asyncio, with a breakdown by owner:
``python -m multiloop.reliability.idle_memory [--backend B|stock ...] [--connections N] [--json F]``.

Facts that shape it:
- What a server keeps per idle connection is Python objects (transport, protocol, the fd's registration and
  its callback handle, the socket object), so ``tracemalloc`` counts it exactly and attributes each block to
  the source file that allocated it; RSS would add allocator slack and the kernel's socket buffers (the same
  for every loop: the kernel's, not the loop's).
- The connecting side must not be counted: it is another process (its sockets would also use the server's
  descriptors). Each connection is two descriptors on the machine; N = 5,000 needs ``RLIMIT_NOFILE`` above
  N + a few in each process, which the worker raises to its hard limit.
- The first connection a loop serves creates things once (the loop's read buffer, 256 KiB on multiloop;
  tables growing from empty), so one connection is made and dropped before counting starts.
- Each backend runs in a fresh process of its own (``--worker``), so nothing one loop left behind (interned
  strings, caches, free lists) is counted against another.

Breakdown (by the allocating file): *transport* (``multiloop/net``, ``transport_base.py``, stock's
``selector_events.py``/``transports.py``), *protocol* (this module: the test protocol, one small object),
*per-fd state* (the fd table, core, pollers and the trio plugin; stock's ``selectors.py`` and the
``events.py`` handle), *socket* (``socket.py``: the accepted socket objects), *other*.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import tracemalloc
from typing import Any

GROUPS = (
    ("transport", ("/multiloop/net/", "/multiloop/transport_base.py", "/multiloop/flowcontrol.py",
                   "/asyncio/selector_events.py", "/asyncio/transports.py")),
    ("protocol", ("/multiloop/reliability/idle_memory.py",)),
    ("per-fd state", ("/multiloop/fdtable.py", "/multiloop/core.py", "/multiloop/pollers/",
                      "/multiloop_trio/", "/trio/", "/selectors.py", "/asyncio/events.py",
                      "/asyncio/base_events.py", "/multiloop/callbacks.py", "/multiloop/_threadsafe_handle.py")),
    ("socket", ("/socket.py",)),
)

#: Connections above this leave fds of at least FD_SETSIZE (1024), which select() cannot watch.
SELECT_LIMIT = 1000

_CLIENT = r"""
import socket, sys
addr = ("127.0.0.1", int(sys.argv[1]))
socks = [socket.create_connection(addr) for _ in range(int(sys.argv[2]))]
print("connected", flush=True)
sys.stdin.readline()
"""


def group_of(filename: str) -> str:
    for name, parts in GROUPS:
        if any(part in filename for part in parts):
            return name
    return "other"


class IdleProtocol(asyncio.Protocol):
    """Keeps its transport, as a real protocol does; counts connections."""

    __slots__ = ("transport",)
    made = 0
    all_made: asyncio.Future[None] | None = None
    wanted = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        IdleProtocol.made += 1
        if IdleProtocol.made == IdleProtocol.wanted and IdleProtocol.all_made is not None:
            IdleProtocol.all_made.set_result(None)


def make_loop(backend: str) -> asyncio.AbstractEventLoop:
    if backend == "stock":
        return asyncio.new_event_loop()
    import multiloop

    return multiloop.new_loop(backend)


def measure(backend: str, connections: int) -> dict[str, Any]:
    """In this process: serve ``connections`` idle clients (another process) and count what they cost."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = make_loop(backend)
    IdleProtocol.wanted = connections

    async def main() -> dict[str, Any]:
        IdleProtocol.all_made = loop.create_future()
        server = await loop.create_server(IdleProtocol, "127.0.0.1", 0, backlog=min(connections, 4096))
        port = server.sockets[0].getsockname()[1]
        # One connection first, made and dropped: what the first connection creates once per loop (the
        # loop's read buffer, tables growing from empty) is not a per-connection cost.
        warm = socket.create_connection(("127.0.0.1", port))
        while IdleProtocol.made < 1:
            await asyncio.sleep(0.01)
        warm.close()
        for _ in range(3):
            await asyncio.sleep(0.05)
        IdleProtocol.made = 0
        gc.collect()
        before = tracemalloc.take_snapshot()
        client = subprocess.Popen([sys.executable, "-c", _CLIENT, str(port), str(connections)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            await asyncio.wait_for(IdleProtocol.all_made, 120)
            for _ in range(3):  # let every accept's follow-up callbacks run
                await asyncio.sleep(0.05)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            assert client.stdin is not None
            client.stdin.write(b"\n")
            client.stdin.close()
            client.wait()
        server.close()
        snapshot_filter = [tracemalloc.Filter(False, tracemalloc.__file__)]
        stats = after.filter_traces(snapshot_filter).compare_to(before.filter_traces(snapshot_filter),
                                                              "filename")
        groups = {name: 0 for name, _ in GROUPS} | {"other": 0}
        other_files: dict[str, int] = {}
        for stat in stats:
            filename = stat.traceback[0].filename
            group = group_of(filename)
            groups[group] += stat.size_diff
            if group == "other" and abs(stat.size_diff) >= connections:
                other_files[filename] = stat.size_diff
        total = sum(groups.values())
        return {
            "backend": backend, "connections": IdleProtocol.made,
            "bytes_per_connection": round(total / connections, 1),
            "breakdown_per_connection": {name: round(size / connections, 1) for name, size in groups.items()},
            "other_files": {name: round(size / connections, 1) for name, size in
                            sorted(other_files.items(), key=lambda item: -abs(item[1]))[:5]},
            "python": sys.version.split()[0],
        }

    tracemalloc.start()
    try:
        return loop.run_until_complete(main())
    finally:
        tracemalloc.stop()
        loop.close()


def run_worker(backend: str, connections: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "multiloop.reliability.idle_memory", "--worker", backend, "--connections", str(connections)],
                         capture_output=True, text=True, check=False, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"idle_memory worker for {backend} failed: {out.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m multiloop.reliability.idle_memory", description=__doc__)
    parser.add_argument("--backend", action="append", default=[], help="backend, or 'stock' (repeatable)")
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--json", metavar="F")
    parser.add_argument("--worker", metavar="B", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args.connections)))
        return 0
    import multiloop

    backends = args.backend or ["stock", *(b.name for b in multiloop.backends() if b.available)]
    if args.connections > SELECT_LIMIT and "select" in backends:
        # select(2) takes fds below FD_SETSIZE only (stock's SelectSelector too): no figure at this size.
        print(f"select: skipped, {args.connections} connections need fds above select()'s {SELECT_LIMIT}")
        backends.remove("select")
    results = [run_worker(name, args.connections) for name in backends]
    stock = next((r["bytes_per_connection"] for r in results if r["backend"] == "stock"), None)
    print(f"idle TCP connections: {args.connections}, Python {results[0]['python']}, {os.cpu_count()} CPUs")
    for r in results:
        ratio = f" ({r['bytes_per_connection'] / stock:.2f}x stock)" if stock else ""
        parts = ", ".join(f"{k} {v:,.0f}" for k, v in r["breakdown_per_connection"].items())
        print(f"  {r['backend']:<7} {r['bytes_per_connection']:>7,.0f} B/conn{ratio}: {parts}")
        if r["other_files"]:
            print(f"          other: {r['other_files']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
