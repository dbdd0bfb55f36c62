"""Micro-benchmarks of the loop core: scheduling, timers, tasks, futures, cross-thread calls, fd dispatch.

Each is a coroutine function ``bench(n)`` that runs inside the loop under test, uses only the public asyncio
API (so the same code runs on stock asyncio, every multiloop backend, trio-asyncio and uvloop), times only
its hot section, and returns a :class:`~benchmarks.harness.Sample`. Callbacks do as little as possible (bump
a counter) so the loop's own cost is what is measured.
"""

from __future__ import annotations

import asyncio
import collections
import random
import socket
import threading

from .harness import Benchmark, Sample, Stopwatch


async def call_soon(n: int) -> Sample:
    """``n`` callbacks scheduled with call_soon and run. 100 chains run side by side: each callback
    schedules the next one of its chain, so every loop pass runs ~100 callbacks (a busy server's ready
    queue) and the cost is call_soon + the ready-queue pass, not one giant batch."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    width = min(100, n)
    left = n - width
    finished = 0

    def step() -> None:
        nonlocal left, finished
        if left > 0:
            left -= 1
            loop.call_soon(step)
        else:
            finished += 1
            if finished == width:
                done.set_result(None)

    with Stopwatch() as sw:
        for _ in range(width):
            loop.call_soon(step)
        await done
    return sw.sample(n)


async def call_soon_threadsafe(n: int) -> Sample:
    """Another thread posts ``n`` call_soon_threadsafe calls as fast as it can while the loop runs them;
    timed from the burst's start (loop blocked in its backend) until the loop has run the last one. This is
    the wake-up path: stock asyncio writes its self-pipe on every call."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    count = 0

    def cb() -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)

    go = threading.Event()

    def producer() -> None:
        go.wait()
        post = loop.call_soon_threadsafe
        for _ in range(n):
            post(cb)

    t = threading.Thread(target=producer, name="bench-producer")
    t.start()
    try:
        await asyncio.sleep(0.005)  # let the producer reach go.wait() and the loop go idle in its backend
        with Stopwatch() as sw:
            go.set()
            await done
    finally:
        go.set()
        t.join()
    return sw.sample(n)


async def threadsafe_pingpong(n: int) -> Sample:
    """``n`` cross-thread round trips: a thread posts one call and waits until the loop has run it. The
    loop is blocked in its backend every time, so this is wake-up latency, not batching."""
    loop = asyncio.get_running_loop()
    ran = threading.Event()
    set_ran = ran.set

    def client() -> None:
        post = loop.call_soon_threadsafe
        for _ in range(n):
            ran.clear()
            post(set_ran)
            ran.wait()

    finished = loop.create_future()

    def run_client() -> None:
        try:
            client()
        finally:
            loop.call_soon_threadsafe(finished.set_result, None)

    with Stopwatch() as sw:
        t = threading.Thread(target=run_client, name="bench-pingpong")
        t.start()
        await finished
    t.join()
    return sw.sample(n)


async def timers(n: int) -> Sample:
    """``n`` call_later timers with deadlines spread (in random order) over 2 ms, all fired: heap push, pop
    in deadline order, and run. Scheduling ``n`` takes longer than 2 ms, so the wait is not what is timed."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    rng = random.Random(1234)
    delays = [rng.random() * 0.002 for _ in range(n)]
    count = 0

    def cb() -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)

    call_later = loop.call_later
    with Stopwatch() as sw:
        for d in delays:
            call_later(d, cb)
        await done
    return sw.sample(n)


async def timer_cancel(n: int) -> Sample:
    """Timeout churn: ``n`` timers scheduled 30-90 s ahead and cancelled, at most 200 pending at a time, with
    a loop pass every 1000 (what ``asyncio.timeout`` around fast operations does). Exercises cancellation
    and the cleanup of cancelled entries from the heap; nothing ever fires."""
    loop = asyncio.get_running_loop()
    rng = random.Random(99)
    delays = [30 + rng.random() * 60 for _ in range(n)]
    pending: collections.deque[asyncio.TimerHandle] = collections.deque()
    call_later = loop.call_later

    def cb() -> None:  # pragma: no cover - never fires
        raise AssertionError("a cancelled timer fired")

    with Stopwatch() as sw:
        for i, d in enumerate(delays):
            pending.append(call_later(d, cb))
            if len(pending) > 200:
                pending.popleft().cancel()
            if i % 1000 == 999:
                await asyncio.sleep(0)
        while pending:
            pending.popleft().cancel()
        await asyncio.sleep(0)
    return sw.sample(n)


async def _leaf() -> None:
    await asyncio.sleep(0)


async def tasks(n: int) -> Sample:
    """Task churn: ``n`` small tasks (one suspension each) made by ``asyncio.gather`` in batches of 100."""
    batch = 100
    rounds, rest = divmod(n, batch)
    gather = asyncio.gather
    with Stopwatch() as sw:
        for _ in range(rounds):
            await gather(*[_leaf() for _ in range(batch)])
        if rest:
            await gather(*[_leaf() for _ in range(rest)])
    return sw.sample(n)


async def future_roundtrip(n: int) -> Sample:
    """``n`` times: create a future, resolve it from a call_soon callback, await it (wake-up of a waiting
    task through a future's done callback: the shape of every awaited I/O completion)."""
    loop = asyncio.get_running_loop()
    create_future = loop.create_future
    call_soon = loop.call_soon
    with Stopwatch() as sw:
        for _ in range(n):
            fut = create_future()
            call_soon(fut.set_result, None)
            await fut
    return sw.sample(n)


async def _fd_pingpong(n: int, idle_pairs: int) -> Sample:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    a, b = socket.socketpair()
    idle = [socket.socketpair() for _ in range(idle_pairs)]
    for s in (a, b):
        s.setblocking(False)
    count = 0
    a_recv, a_send, b_recv, b_send = a.recv, a.send, b.recv, b.send

    def on_a() -> None:
        nonlocal count
        a_recv(16)
        count += 1
        if count >= n:
            if not done.done():
                done.set_result(None)
            return
        a_send(b"x")

    def on_b() -> None:
        b_recv(16)
        b_send(b"y")

    def never() -> None:  # pragma: no cover - idle sockets never become readable
        raise AssertionError("idle socket became readable")

    try:
        for x, _ in idle:
            loop.add_reader(x.fileno(), never)
        loop.add_reader(a.fileno(), on_a)
        loop.add_reader(b.fileno(), on_b)
        with Stopwatch() as sw:
            a_send(b"x")
            await done
    finally:
        for s in (a, b):
            loop.remove_reader(s.fileno())
            s.close()
        for x, y in idle:
            loop.remove_reader(x.fileno())
            x.close()
            y.close()
    return sw.sample(n)


async def fd_pingpong(n: int) -> Sample:
    """``n`` round trips of one byte over a socketpair, both ends driven by add_reader callbacks: the core's
    readiness -> handle -> callback path, with no transport in between."""
    return await _fd_pingpong(n, 0)


async def fd_pingpong_idle(n: int) -> Sample:
    """As fd_pingpong, with 200 idle socketpairs also registered (202 watched fds): what a wait costs when
    most watched fds are quiet (O(registered) for select and poll, O(ready) for epoll)."""
    return await _fd_pingpong(n, 200)


BENCHMARKS = [
    Benchmark("call_soon", call_soon, 10_000, "callbacks", call_soon.__doc__ or ""),
    Benchmark("call_soon_threadsafe", call_soon_threadsafe, 2_000, "callbacks",
              call_soon_threadsafe.__doc__ or "", clock="wall"),
    Benchmark("threadsafe_pingpong", threadsafe_pingpong, 300, "round trips", threadsafe_pingpong.__doc__ or "",
              clock="wall"),
    Benchmark("timers", timers, 5_000, "timers", timers.__doc__ or ""),
    Benchmark("timer_cancel", timer_cancel, 10_000, "timers", timer_cancel.__doc__ or ""),
    Benchmark("tasks", tasks, 3_000, "tasks", tasks.__doc__ or ""),
    Benchmark("future_roundtrip", future_roundtrip, 3_000, "round trips", future_roundtrip.__doc__ or ""),
    Benchmark("fd_pingpong", fd_pingpong, 2_000, "round trips", fd_pingpong.__doc__ or ""),
    Benchmark("fd_pingpong_idle", fd_pingpong_idle, 1_000, "round trips", fd_pingpong_idle.__doc__ or ""),
]
