"""Memory per idle TCP connection, on each loop: a server holding N idle accepted connections.

Method: for each loop, a fresh server process (this module, ``--serve LOOP``) accepts connections from a
client process (this module, ``--client``: plain sockets, standard library only, the same for every loop) and
measures what N more idle connections cost it, after a warm-up of 50: the growth of its resident set
(``/proc/self/statm``) in one process, and the growth of Python's heap seen by ``tracemalloc`` in another
(tracemalloc's own bookkeeping would inflate the resident set). The tracemalloc run also attributes new
objects to transport, protocol, per-fd state (registrations, handles) and socket objects, by type and owner
(``gc``; objects the collector does not track, like strings, fall under "untracked"). Each server process runs
one loop only, so allocator state left by another loop cannot leak into the numbers.

The connections are idle: accepted, protocol made, transport reading, nothing sent. The protocol keeps its
transport (``self.transport = transport``) as most protocols do.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

WARMUP = 50
CATEGORIES = ("transport", "protocol", "per-fd state", "socket", "server accounting", "other tracked", "untracked")


# ------------------------------------------------------------------------------------------ client process
def _client(port: int) -> None:
    """Read counts on stdin, open that many more connections, answer 'ok' (then hold them until EOF)."""
    held = []
    for line in sys.stdin:
        for _ in range(int(line)):
            held.append(socket.create_connection(("127.0.0.1", port)))
        sys.stdout.write("ok\n")
        sys.stdout.flush()
    for s in held:
        s.close()


# ------------------------------------------------------------------------------------------ server process
def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(hard, need)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def _loop_factory(name: str) -> Callable[[], Any]:
    import asyncio
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        import uvloop  # type: ignore[import-not-found, unused-ignore]
        return uvloop.new_event_loop
    import multiloop
    return multiloop.loop_factory(name)


def _category(obj: Any, owners: dict[int, str]) -> str:
    import asyncio
    tp = type(obj)
    name = tp.__qualname__
    if isinstance(obj, asyncio.BaseTransport) or "Transport" in name:
        return "transport"
    if isinstance(obj, asyncio.BaseProtocol):
        return "protocol"
    if isinstance(obj, socket.socket):
        return "socket"
    if name in ("FdEntry", "Handle", "TimerHandle", "SelectorKey", "Context") or "Handle" in name:
        return "per-fd state"
    if name == "method":
        return _category(obj.__self__, owners)
    if name in ("dict", "deque", "list", "tuple"):
        return owners.get(id(obj), "other tracked")
    if name in ("weakref", "KeyedRef", "ReferenceType") or "WeakSet" in name:
        return "server accounting"
    return "other tracked"


def _owners(new: list[Any]) -> dict[int, str]:
    """For containers among ``new``: the category of the object holding them (one level up)."""
    owners: dict[int, str] = {}
    containers = [o for o in new if type(o).__qualname__ in ("dict", "deque", "list", "tuple")]
    ids = {id(o) for o in new}
    for c in containers:
        for ref in gc.get_referrers(c):
            if id(ref) in ids and type(ref).__qualname__ not in ("dict", "list", "tuple", "frame"):
                owners[id(c)] = _category(ref, {})
                break
    return owners


def _serve(loop_name: str, connections: int, trace: bool) -> dict[str, Any]:
    import asyncio
    _raise_fd_limit(connections + WARMUP + 200)
    made: list[Any] = []

    class Idle(asyncio.Protocol):
        transport: Any = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            made.append(self)

        def data_received(self, data: bytes) -> None:
            pass

    async def main() -> dict[str, Any]:
        import tracemalloc
        server = await asyncio.get_running_loop().create_server(Idle, "127.0.0.1", 0, backlog=4096)
        port = server.sockets[0].getsockname()[1]
        client = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__), "--client", str(port)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert client.stdin is not None and client.stdout is not None

        async def add(n: int) -> None:
            want = len(made) + n
            client.stdin.write(f"{n}\n")  # type: ignore[union-attr]
            client.stdin.flush()  # type: ignore[union-attr]
            deadline = time.monotonic() + 120
            while len(made) < want:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {len(made)} of {want} connections arrived")
                await asyncio.sleep(0.005)
            await asyncio.to_thread(client.stdout.readline)  # type: ignore[union-attr]
            for _ in range(3):
                await asyncio.sleep(0)

        try:
            await add(WARMUP)
            gc.collect()
            before_ids: set[int] = set()
            if trace:
                tracemalloc.start(1)
                t0 = tracemalloc.take_snapshot()
                # After the snapshot, whose objects must not count as new; this set itself is left out of the
                # totals by the filter below (it is allocated in this file).
                before_ids = {id(o) for o in gc.get_objects()}
            r0 = _rss()
            await add(connections)
            gc.collect()
            r1 = _rss()
            out: dict[str, Any] = {"rss_per_conn": (r1 - r0) / connections}
            if trace:
                t1 = tracemalloc.take_snapshot()
                tracemalloc.stop()
                mine = [tracemalloc.Filter(False, __file__), tracemalloc.Filter(False, tracemalloc.__file__)]
                t0, t1 = t0.filter_traces(mine), t1.filter_traces(mine)
                total = sum(s.size_diff for s in t1.compare_to(t0, "filename"))
                del t0, t1  # their trace lists must not count as new objects below
                everything = gc.get_objects()
                new = [o for o in everything if id(o) not in before_ids and o is not before_ids]
                del everything
                owners = _owners(new)
                cats: collections.Counter[str] = collections.Counter()
                types: collections.Counter[str] = collections.Counter()
                for o in new:
                    if o is new or o is owners:
                        continue
                    size = sys.getsizeof(o)
                    cats[_category(o, owners)] += size
                    types[f"{type(o).__module__}.{type(o).__qualname__}"] += size
                cats["untracked"] = max(0, total - sum(cats.values()))
                out["tracemalloc_per_conn"] = total / connections
                out["breakdown"] = {k: cats.get(k, 0) / connections for k in CATEGORIES}
                out["types"] = {k: v / connections for k, v in types.most_common(12)}
            return out
        finally:
            client.stdin.close()
            client.wait(30)
            for p in made:
                if p.transport is not None:
                    p.transport.abort()
            server.close()
            await asyncio.sleep(0)

    runner = asyncio.Runner(loop_factory=_loop_factory(loop_name))
    with runner:
        return runner.run(main())


# ------------------------------------------------------------------------------------------ the driver
def measure(loops: list[str], connections: int,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure each loop (trio-asyncio is not a loop object: left out) in fresh processes; ratios vs the first
    (stock asyncio)."""
    results = []
    for name in loops:
        if name == "trio-asyncio":
            continue
        row: dict[str, Any] = {"loop": name}
        for trace in (False, True):
            cmd = [sys.executable, "-m", "multiloop.bench.memory", "--serve", name, "--connections",
                   str(connections)] + (["--trace"] if trace else [])
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                row["error"] = tail
                break
            row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        results.append(row)
        if progress is not None:
            progress(f"memory {name:<12} " + (f"ERROR {row['error']}" if "error" in row else
                                               f"rss {row['rss_per_conn']:.0f} B/conn, tracemalloc "
                                               f"{row['tracemalloc_per_conn']:.0f} B/conn"))
    base = results[0] if results and "error" not in results[0] else None
    for row in results:
        row["ratio"] = (row["tracemalloc_per_conn"] / base["tracemalloc_per_conn"]
                        if base is not None and "error" not in row else None)
        row["rss_ratio"] = (row["rss_per_conn"] / base["rss_per_conn"]
                            if base is not None and "error" not in row and base["rss_per_conn"] > 0 else None)
    return {"connections": connections, "results": results}


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def format_table(mem: dict[str, Any]) -> str:
    rows = mem["results"]
    header = ["loop", "tracemalloc B/conn", "vs asyncio", "RSS B/conn", "vs asyncio", *CATEGORIES]
    table = []
    for r in rows:
        if "error" in r:
            table.append([r["loop"], "ERROR: " + r["error"]] + [""] * (len(header) - 2))
            continue
        table.append([r["loop"], f"{r['tracemalloc_per_conn']:.0f}", _ratio(r["ratio"]), f"{r['rss_per_conn']:.0f}",
                      _ratio(r["rss_ratio"]), *(f"{r['breakdown'][c]:.0f}" for c in CATEGORIES)])
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    lines = [f"Memory per idle TCP connection ({mem['connections']} connections; lower is better; breakdown in "
             f"bytes per connection from tracemalloc)",
             "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(t, widths, strict=True)) for t in table]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m multiloop.bench.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--serve", metavar="LOOP", help="(internal) measure one loop in this process")
    p.add_argument("--client", type=int, metavar="PORT", help="(internal) the connecting process")
    p.add_argument("--trace", action="store_true", help="(internal) use tracemalloc")
    p.add_argument("--connections", type=int, default=5000)
    p.add_argument("--loops", default="asyncio,epoll,poll,trio,uvloop")
    args = p.parse_args(argv)
    if args.client is not None:
        _client(args.client)
        return 0
    if args.serve:
        print(json.dumps(_serve(args.serve, args.connections, args.trace)))
        return 0
    print(format_table(measure(args.loops.split(","), args.connections, progress=print)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
