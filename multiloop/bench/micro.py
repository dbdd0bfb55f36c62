"""Micro-benchmarks of the loop core: scheduling, timers, tasks, futures, cross-thread calls, fd dispatch.

Each is a coroutine function ``bench(n)`` that runs inside the loop under test, uses only the public asyncio
API (so the same code runs on stock asyncio, every multiloop backend, trio-asyncio and uvloop), times only
its hot section, and returns a :class:`~multiloop.bench.harness.Sample`. Callbacks do as little as possible
(bump a counter, note an order) so the loop's own cost is what is measured; after the timed section each
benchmark checks that the loop did what was asked (every callback ran once, in order; cancelled timers never
fired) and raises :class:`~multiloop.bench.harness.VerificationError` if not.
"""

from __future__ import annotations

import asyncio
import collections
import random
import resource
import socket
import threading

from .harness import Sample, Skip, Stopwatch, verify


async def _chains(n: int, width: int) -> Sample:
    """``n`` callbacks in ``width`` chains: each callback schedules the next one of its chain, so every loop
    pass runs ``width`` callbacks. Verified: every pass runs the chains in the order they started."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    width = min(width, n)
    per_chain, extra = divmod(n, width)
    left = [per_chain + (1 if c < extra else 0) for c in range(width)]
    order: list[int] = []  # the chain of every callback run, in run order
    note = order.append
    finished = 0

    def step(chain: int) -> None:
        nonlocal finished
        note(chain)
        remaining = left[chain] - 1
        left[chain] = remaining
        if remaining:
            loop.call_soon(step, chain)
        else:
            finished += 1
            if finished == width:
                done.set_result(None)

    with Stopwatch() as sw:
        for c in range(width):
            loop.call_soon(step, c)
        await done
    verify(len(order) == n, f"{len(order)} callbacks ran, {n} were scheduled")
    # FIFO: chain c's k-th callback is the c-th of pass k (chains that ran out drop off the end).
    expected = [c for k in range(per_chain + 1) for c in range(width) if k < per_chain or c < extra]
    verify(order == expected, "callbacks ran out of FIFO order")
    return sw.sample(n)


async def call_soon(n: int) -> Sample:
    """``n`` call_soon callbacks in 1,000 chains side by side (each callback schedules the next of its chain):
    every pass runs ~1,000 callbacks, a busy server's ready queue. call_soon + the ready-queue pass."""
    return await _chains(n, 1000)


async def call_soon_1chain(n: int) -> Sample:
    """``n`` call_soon callbacks in one chain: one callback per loop pass, so the cost of a whole (idle)
    pass is part of every callback."""
    return await _chains(n, 1)


PRODUCERS = 4


async def call_soon_threadsafe(n: int) -> Sample:
    """4 other threads post ``n`` call_soon_threadsafe calls in all, as fast as they can, while the loop runs
    them; timed from the burst's start (the loop blocked in its backend) until the loop has run the last one.
    This is the wake-up path: stock asyncio writes its self-pipe on every call. Verified: every call ran once,
    each thread's calls in the order that thread made them."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    per = max(1, n // PRODUCERS)
    total = per * PRODUCERS
    seen: list[list[int]] = [[] for _ in range(PRODUCERS)]
    count = 0

    def cb(producer: int, i: int) -> None:
        nonlocal count
        seen[producer].append(i)
        count += 1
        if count == total:
            done.set_result(None)

    go = threading.Event()

    def producer(p: int) -> None:
        go.wait()
        post = loop.call_soon_threadsafe
        for i in range(per):
            post(cb, p, i)

    threads = [threading.Thread(target=producer, args=(p,), name=f"bench-producer-{p}") for p in range(PRODUCERS)]
    for t in threads:
        t.start()
    try:
        await asyncio.sleep(0.005)  # let the producers reach go.wait() and the loop go idle in its backend
        with Stopwatch() as sw:
            go.set()
            await done
    finally:
        go.set()
        for t in threads:
            t.join()
    verify(all(s == list(range(per)) for s in seen), "a thread's callbacks were lost, repeated or reordered")
    return sw.sample(total)


async def threadsafe_pingpong(n: int) -> Sample:
    """``n`` cross-thread round trips: a thread posts one call and waits until the loop has run it. The
    loop is blocked in its backend every time, so this is wake-up latency, not batching."""
    loop = asyncio.get_running_loop()
    ran = threading.Event()
    runs = 0

    def on_loop() -> None:
        nonlocal runs
        runs += 1
        ran.set()

    def client() -> None:
        post = loop.call_soon_threadsafe
        for _ in range(n):
            ran.clear()
            post(on_loop)
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
    verify(runs == n, f"{runs} of {n} round trips ran")
    return sw.sample(n)


async def timers(n: int) -> Sample:
    """``n`` call_later timers with deadlines spread (in random order) over 2 ms; every other one is cancelled
    right after it is made, the rest fire: heap push, cancel, pop in deadline order, run. Verified: no
    cancelled timer fired, every other one fired once, in deadline order."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    rng = random.Random(1234)
    delays = [rng.random() * 0.002 for _ in range(n)]
    expected = (n + 1) // 2
    whens = [0.0] * n
    fired: list[int] = []
    note = fired.append

    def cb(i: int) -> None:
        note(i)
        if len(fired) == expected:
            done.set_result(None)

    call_later = loop.call_later
    time = loop.time
    with Stopwatch() as sw:
        for i, d in enumerate(delays):
            whens[i] = time() + d  # (uvloop's timer handles have no when())
            handle = call_later(d, cb, i)
            if i & 1:
                handle.cancel()
        await done
    await asyncio.sleep(0.003)  # past every deadline: a cancelled timer that fires would show up
    verify(sorted(fired) == list(range(0, n, 2)), "a cancelled timer fired, or a timer did not fire exactly once")
    # Deadline order: counted from the call (asyncio's definition), or from the start of the loop pass (uvloop
    # reads its clock once per pass). To 3 ms: uvloop keeps libuv's millisecond timers (a broken heap misorders
    # far more).
    by_call = [whens[i] for i in fired]
    by_pass = [delays[i] for i in fired]
    verify(any(all(a <= b + 0.003 for a, b in zip(seq, seq[1:], strict=False)) for seq in (by_call, by_pass)),
           "timers fired out of deadline order")
    return sw.sample(n)


async def timer_cancel(n: int) -> Sample:
    """Timeout churn: ``n`` timers scheduled 30-90 s ahead and cancelled, at most 200 pending at a time, with
    a loop pass every 1000 (what ``asyncio.timeout`` around fast operations does). Exercises cancellation
    and the cleanup of cancelled entries from the heap. Verified: nothing ever fires."""
    loop = asyncio.get_running_loop()
    rng = random.Random(99)
    delays = [30 + rng.random() * 60 for _ in range(n)]
    pending: collections.deque[asyncio.TimerHandle] = collections.deque()
    call_later = loop.call_later
    fired = 0

    def cb() -> None:
        nonlocal fired
        fired += 1

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
    verify(fired == 0, f"{fired} cancelled timers fired")
    return sw.sample(n)


async def _leaf(i: int) -> int:
    await asyncio.sleep(0)
    return i


async def tasks(n: int) -> Sample:
    """Task churn: ``n`` small tasks (one suspension each) made by ``asyncio.gather`` in batches of 1,000.
    Verified: every result came back, in order."""
    batch = 1000
    gather = asyncio.gather
    ok = True
    with Stopwatch() as sw:
        for start in range(0, n, batch):
            size = min(batch, n - start)
            results = await gather(*[_leaf(i) for i in range(size)])
            ok = ok and results == list(range(size))
    verify(ok, "gather returned wrong results")
    return sw.sample(n)


async def future_roundtrip(n: int) -> Sample:
    """``n`` times: create a future, resolve it from a call_soon callback, await it (wake-up of a waiting
    task through a future's done callback: the shape of every awaited I/O completion)."""
    loop = asyncio.get_running_loop()
    create_future = loop.create_future
    call_soon = loop.call_soon
    total = 0
    with Stopwatch() as sw:
        for i in range(n):
            fut = create_future()
            call_soon(fut.set_result, i)
            total += await fut
    verify(total == n * (n - 1) // 2, "futures resolved with wrong values")
    return sw.sample(n)


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        raise Skip(f"needs {need} file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else hard, hard))


async def _fd_pingpong(n: int, idle_pairs: int, watch_both: bool = False) -> Sample:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    if idle_pairs > 400:
        _raise_fd_limit(2 * idle_pairs + 200)
    a, b = socket.socketpair()
    idle: list[tuple[socket.socket, socket.socket]] = []
    for s in (a, b):
        s.setblocking(False)
    count = 0
    a_recv, a_send, b_recv, b_send = a.recv, a.send, b.recv, b.send
    idle_woke = 0

    def on_a() -> None:
        nonlocal count
        data = a_recv(16)
        count += 1
        if data != b"y" or count >= n:
            if not done.done():
                done.set_result(data)
            return
        a_send(b"x")

    def on_b() -> None:
        if b_recv(16) == b"x":
            b_send(b"y")

    def never() -> None:  # idle sockets never become readable
        nonlocal idle_woke
        idle_woke += 1

    registered: list[int] = []
    try:
        for _ in range(idle_pairs):
            idle.append(socket.socketpair())
        for pair in idle:
            for x in pair if watch_both else pair[:1]:
                try:
                    loop.add_reader(x.fileno(), never)
                except Exception as exc:  # noqa: BLE001 - select: FD_SETSIZE
                    raise Skip(f"cannot watch fd {x.fileno()}: {exc}") from None
                registered.append(x.fileno())
        loop.add_reader(a.fileno(), on_a)
        loop.add_reader(b.fileno(), on_b)
        with Stopwatch() as sw:
            a_send(b"x")
            last = await done
    finally:
        for s in (a, b):
            loop.remove_reader(s.fileno())
            s.close()
        for fd in registered:
            loop.remove_reader(fd)
        for x, y in idle:
            x.close()
            y.close()
    verify(last == b"y" and count == n, f"ping-pong broke after {count} of {n} round trips")
    verify(idle_woke == 0, "an idle fd's callback ran")
    return sw.sample(n)


async def fd_pingpong(n: int) -> Sample:
    """``n`` round trips of one byte over a socketpair, both ends driven by add_reader callbacks: the core's
    readiness -> handle -> callback path, with no transport in between."""
    return await _fd_pingpong(n, 0)


async def fd_pingpong_idle(n: int) -> Sample:
    """As fd_pingpong, with 200 idle socketpairs also registered (202 watched fds): what a wait costs when
    most watched fds are quiet (O(registered) for select and poll, O(ready) for epoll)."""
    return await _fd_pingpong(n, 200)


async def idle_fds_9000(n: int) -> Sample:
    """As fd_pingpong, with 9,000 idle fds registered (4,500 socketpairs, both ends watched) and one
    active pair: a server with many quiet connections (needs ``ulimit -n`` >= 9,200; select cannot)."""
    return await _fd_pingpong(n, 4500, watch_both=True)


BENCHMARKS = [
    ("call_soon", call_soon, 20_000, "callbacks", "core", "cpu"),
    ("call_soon_1chain", call_soon_1chain, 5_000, "callbacks", "core", "cpu"),
    ("call_soon_threadsafe", call_soon_threadsafe, 4_000, "callbacks", "core", "wall"),
    ("threadsafe_pingpong", threadsafe_pingpong, 300, "round trips", "core", "wall"),
    ("timers", timers, 5_000, "timers", "core", "cpu"),
    ("timer_cancel", timer_cancel, 10_000, "timers", "core", "cpu"),
    ("tasks", tasks, 3_000, "tasks", "core", "cpu"),
    ("future_roundtrip", future_roundtrip, 3_000, "round trips", "core", "cpu"),
    ("fd_pingpong", fd_pingpong, 2_000, "round trips", "core", "cpu"),
    ("fd_pingpong_idle", fd_pingpong_idle, 1_000, "round trips", "core", "cpu"),
    ("idle_fds_9000", idle_fds_9000, 1_000, "round trips", "io", "cpu"),
]
