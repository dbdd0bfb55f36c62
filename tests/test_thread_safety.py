"""Thread safety, tested rather than assumed. Written for free-threaded builds (3.14t, 3.15t), where every
data race is real, and run on every Python (with the GIL they must pass too):

- the GIL stays disabled after importing multiloop, loading every backend plugin and running a loop;
- ``call_soon_threadsafe`` from 8 threads at full speed loses, duplicates and reorders no callback, and a
  handle its producer cancelled before the loop started it never runs;
- 4 loops in 4 threads serve and echo TCP traffic to each other at once, every byte verified;
- backend discovery, plugin loading, ``new_loop()``, the policy class and the callback-type cache, all from
  many threads at once in a fresh interpreter (nothing loaded yet), agree and do not fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time

import pytest

import multiloop

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def run_python(code: str, timeout: float = 120) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------- the GIL
@pytest.mark.skipif(not hasattr(sys, "_is_gil_enabled"), reason="sys._is_gil_enabled() is 3.13+")
def test_the_gil_stays_as_it_was_after_importing_multiloop_and_its_plugins_and_running_loops():
    result = run_python("""
        import asyncio, json, sys, warnings
        # CPython warns (RuntimeWarning) when importing an extension module re-enables the GIL.
        warnings.simplefilter("error", RuntimeWarning)
        before = sys._is_gil_enabled()
        import multiloop, multiloop.pytest_plugin
        names = [b.name for b in multiloop.backends() if b.available]   # loads every entry-point plugin
        for name in names:
            multiloop.run(asyncio.sleep(0), backend=name)
        print(json.dumps({"before": before, "after": sys._is_gil_enabled(), "backends": names,
                          "broken": [b.name for b in multiloop.backends() if not b.available
                                     and "broken plugin" in (b.reason or "")]}))
    """)
    assert result["broken"] == []
    assert result["after"] == result["before"], f"loading multiloop changed the GIL: {result}"
    if FREE_THREADED:
        assert result["before"] is False


# ------------------------------------------------------------------------------- call_soon_threadsafe
PRODUCERS = 8
PER_PRODUCER = 20_000
CANCEL_EVERY = 7  # the producer cancels every 7th handle (i % 7 == 3) itself, right after scheduling it


def test_call_soon_threadsafe_from_8_threads_loses_and_duplicates_nothing(loop, run):
    seen: list[list[int]] = [[] for _ in range(PRODUCERS)]
    won: list[set[int]] = [set() for _ in range(PRODUCERS)]  # cancels that beat the loop to the handle
    finished = []

    async def main():
        all_done = loop.create_future()
        start = threading.Barrier(PRODUCERS)

        def on_finished(tid: int) -> None:  # runs on the loop
            finished.append(tid)
            if len(finished) == PRODUCERS:
                all_done.set_result(None)

        def producer(tid: int) -> None:
            record = seen[tid].append
            call = loop.call_soon_threadsafe
            start.wait()
            mine = seen[tid]
            for i in range(PER_PRODUCER):
                handle = call(record, i)
                if i % CANCEL_EVERY == 3:
                    handle.cancel()
                    # The loop may have started it first: then cancel() waited until it returned, and it
                    # is the last thing this producer's callbacks recorded. Otherwise it must never run.
                    if not mine or mine[-1] != i:
                        won[tid].add(i)
                if i % 1024 == 0:
                    time.sleep(0)  # let the loop catch up and block, so the wake-up path is exercised too
            call(on_finished, tid)  # queued after every callback of this producer (FIFO per thread)

        threads = [threading.Thread(target=producer, args=(t,)) for t in range(PRODUCERS)]
        for t in threads:
            t.start()
        await all_done  # no timer, no polling: only the producers' wake-ups end this
        for t in threads:
            t.join()

    t0 = time.perf_counter()
    run(main(), timeout=120)
    elapsed = time.perf_counter() - t0
    for tid in range(PRODUCERS):
        expected = [i for i in range(PER_PRODUCER) if i not in won[tid]]
        assert seen[tid] == expected, f"producer {tid}: lost, duplicated, reordered or cancelled-but-run"
    cancels = sum(len(range(3, PER_PRODUCER, CANCEL_EVERY)) for _ in range(PRODUCERS))
    assert sum(map(len, won)) > cancels // 2  # most cancels come long before the loop gets there
    assert sorted(finished) == list(range(PRODUCERS))
    print(f"\n{PRODUCERS}x{PER_PRODUCER} call_soon_threadsafe on {loop.backend}: {elapsed:.2f}s "
          f"({PRODUCERS * PER_PRODUCER / elapsed:,.0f}/s), loop passes {loop.stats().iterations}")


def test_scheduling_a_function_whose_code_another_thread_keeps_rebinding(loop, run):
    # The callback check reads the function's code object (in C, without a reference on free-threaded
    # builds); another thread swapping __code__ under it must neither crash nor lose a callback.
    ran = []

    def callback():
        ran.append(1)

    def other_body():
        ran.append(2)

    codes = (callback.__code__, other_body.__code__)
    stop = threading.Event()

    def rebinder() -> None:
        i = 0
        while not stop.is_set():
            callback.__code__ = codes[i & 1]
            i += 1

    async def main():
        for _ in range(50):
            for _ in range(400):
                loop.call_soon(callback)
                loop.call_later(0, callback)
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)

    thread = threading.Thread(target=rebinder)
    thread.start()
    try:
        run(main(), timeout=60)
    finally:
        stop.set()
        thread.join()
    assert len(ran) == 50 * 400 * 2
    assert set(ran) <= {1, 2}


def test_a_loop_blocked_in_its_backend_wakes_for_every_burst_from_other_threads(loop, run):
    # No timer, no fd activity: only the producers' wake-ups can make the loop run their callbacks.
    rounds = 200

    async def main():
        for r in range(rounds):
            got = loop.create_future()
            barrier = threading.Barrier(4)

            def producer(r=r, got=got, barrier=barrier):
                barrier.wait()
                loop.call_soon_threadsafe(lambda: got.done() or got.set_result(r))

            threads = [threading.Thread(target=producer) for _ in range(4)]
            for t in threads:
                t.start()
            assert await asyncio.wait_for(got, 10) == r
            for t in threads:
                t.join()

    run(main(), timeout=120)


# ---------------------------------------------------------------------------------- loops in threads
LOOPS = 4
CLIENTS_PER_LOOP = 4
MESSAGES = 16
MESSAGE_SIZE = 64 * 1024


class _Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False  # close once the client is done


def test_four_loops_in_four_threads_echo_tcp_to_each_other_every_byte_verified(backend):
    # Loop i's clients talk to loop (i+1)'s server: traffic crosses threads both ways, all at once.
    ports: list[int | None] = [None] * LOOPS
    servers_up = threading.Barrier(LOOPS)
    results: list[object] = [None] * LOOPS

    async def client(port: int, seed: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sent, received = hashlib.sha256(), hashlib.sha256()
        total = 0
        for m in range(MESSAGES):
            payload = hashlib.sha256(f"{seed}-{m}".encode()).digest() * (MESSAGE_SIZE // 32)
            sent.update(payload)
            writer.write(payload)
            await writer.drain()
            echoed = await reader.readexactly(len(payload))
            received.update(echoed)
            total += len(echoed)
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        assert sent.digest() == received.digest()
        return total

    async def main(i: int) -> int:
        server = await asyncio.get_running_loop().create_server(_Echo, "127.0.0.1", 0)
        ports[i] = server.sockets[0].getsockname()[1]
        await asyncio.to_thread(servers_up.wait, 30)
        target = ports[(i + 1) % LOOPS]
        totals = await asyncio.gather(*(client(target, i * 100 + c) for c in range(CLIENTS_PER_LOOP)))
        await asyncio.to_thread(servers_up.wait, 30)  # keep serving until every other loop is done too
        server.close()
        await server.wait_closed()
        return sum(totals)

    def thread_main(i: int) -> None:
        try:
            results[i] = multiloop.run(asyncio.wait_for(main(i), 60), backend=backend)
        except BaseException as exc:  # noqa: BLE001 - reported below with the thread's number
            results[i] = exc
            servers_up.abort()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=thread_main, args=(i,)) for i in range(LOOPS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.perf_counter() - t0
    assert not any(t.is_alive() for t in threads)
    errors = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert not errors, errors
    per_loop = CLIENTS_PER_LOOP * MESSAGES * (MESSAGE_SIZE // 32 * 32)
    assert results == [per_loop] * LOOPS
    print(f"\n{LOOPS} loops x {CLIENTS_PER_LOOP} clients on {backend}: {LOOPS * per_loop / 2**20:.0f} MiB echoed "
          f"and verified in {elapsed:.2f}s")


# ---------------------------------------------------------------------------- start-up from many threads
def test_discovery_plugins_new_loop_policy_and_callback_cache_from_many_threads_in_a_fresh_process():
    result = run_python("""
        import asyncio, json, sys, threading
        THREADS = 16
        barrier = threading.Barrier(THREADS)
        out = [None] * THREADS

        def work(i):
            try:
                barrier.wait()
                import multiloop
                from multiloop import registry
                names = tuple(b.name for b in multiloop.backends() if b.available)
                default = multiloop.default_backend()
                policy = id(multiloop.EventLoopPolicy) if sys.version_info < (3, 16) else 0
                ran = []
                for name in names:
                    loop = multiloop.new_loop(name)
                    try:
                        # A callable type the callback cache has never seen, made by every thread at once.
                        Kind = type(f"Callable{i}_{name}", (), {"__call__": lambda self: ran.append(name)})
                        loop.call_soon(Kind())
                        loop.run_until_complete(asyncio.sleep(0))
                    finally:
                        loop.close()
                out[i] = {"names": names, "default": default, "registry": id(registry.get_registry()),
                          "policy": policy, "ran": ran}
            except BaseException as exc:
                out[i] = {"error": f"{type(exc).__name__}: {exc}"}

        threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
        for t in threads: t.start()
        for t in threads: t.join()
        from multiloop.callbacks import PLAIN_CALLABLES
        cached = sorted(t.__name__ for t in PLAIN_CALLABLES if t.__name__.startswith("Callable"))
        print(json.dumps({"out": out, "cached": cached}))
    """)
    out = result["out"]
    errors = [o["error"] for o in out if "error" in o]
    assert not errors, errors
    first = out[0]
    assert first["names"], "no backend available"
    for o in out:
        assert o["names"] == first["names"] and o["default"] == first["default"]
        assert o["registry"] == first["registry"] and o["policy"] == first["policy"]
        assert o["ran"] == first["names"]
    assert len(result["cached"]) == len(out) * len(first["names"])  # every new type cached exactly once
