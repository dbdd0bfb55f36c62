"""The trio backend as a plain multiloop backend: found through its entry point, opt-in, and an asyncio
loop whose run_forever runs inside trio.run."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading

import multiloop_trio
import pytest
import sniffio
import trio

import multiloop


def test_backend_is_listed_with_capabilities_and_origin():
    info = {b.name: b for b in multiloop.backends()}["trio"]
    assert info.available and info.reason is None
    assert not info.auto
    assert info.capabilities == {"unlimited_fds", "fork_safe"}
    assert info.origin.startswith("multiloop-asyncio-trio ")


def test_backend_is_never_chosen_automatically():
    assert multiloop.default_backend() != "trio"
    with pytest.raises(multiloop.NoBackendAvailableError, match="trio: only used when named"):
        multiloop.default_backend(avoid=[b.name for b in multiloop.backends() if b.name != "trio"])


def test_core_does_not_import_the_plugin_until_asked():
    code = ("import multiloop, sys; multiloop.new_loop('epoll').close(); "
            "assert 'multiloop_trio' not in sys.modules and 'trio' not in sys.modules, 'imported early'; "
            "multiloop.new_loop('trio').close(); assert 'multiloop_trio' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_probe_says_why_when_trio_is_not_importable(tmp_path):
    # A directory shadowing trio with a module that fails to import, placed first on sys.path.
    (tmp_path / "trio.py").write_text("raise ImportError('no trio here')\n")
    code = ("import multiloop; info = {b.name: b for b in multiloop.backends()}['trio']; "
            "assert not info.available; print(info.reason)")
    out = subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)}).stdout
    assert "trio is not importable" in out and "no trio here" in out


def test_run_until_complete_runs_inside_trio(loop):
    async def main():
        await asyncio.sleep(0)
        return sniffio.current_async_library(), asyncio.get_running_loop() is loop

    assert loop.run_until_complete(main()) == ("asyncio", True)
    assert loop.backend == "trio"


def test_multiloop_run_with_backend_trio():
    async def main():
        await asyncio.sleep(0.001)
        return asyncio.get_running_loop().backend

    assert multiloop.run(main(), backend="trio") == "trio"


def test_asyncio_runner_with_trio_loop_factory():
    async def main(x):
        return x * 2

    with asyncio.Runner(loop_factory=multiloop.loop_factory("trio")) as runner:
        assert runner.run(main(2)) == 4
        assert runner.run(main(3)) == 6  # a second trio.run on the same loop


def test_timers_fire_in_order(loop):
    fired = []

    async def main():
        for delay in (0.02, 0.01, 0.0):
            loop.call_later(delay, fired.append, delay)
        await asyncio.sleep(0.03)

    loop.run_until_complete(main())
    assert fired == [0.0, 0.01, 0.02]


def test_call_soon_threadsafe_wakes_a_waiting_loop(loop):
    async def main():
        fut = loop.create_future()
        threading.Thread(target=loop.call_soon_threadsafe, args=(fut.set_result, "woken")).start()
        return await fut

    assert loop.run_until_complete(asyncio.wait_for(main(), 10)) == "woken"


def test_reader_sees_data_written_by_peer(loop):
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)

        async def main():
            fut = loop.create_future()
            loop.add_reader(a, lambda: fut.done() or fut.set_result(a.recv(100)))
            b.send(b"ping")
            try:
                return await fut
            finally:
                loop.remove_reader(a)

        assert loop.run_until_complete(asyncio.wait_for(main(), 10)) == b"ping"


def test_fd_registered_for_both_directions_reports_each(loop):
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)

        async def main():
            writable = loop.create_future()
            readable = loop.create_future()
            loop.add_reader(a, lambda: readable.done() or readable.set_result(True))
            loop.add_writer(a, lambda: writable.done() or writable.set_result(True))
            await writable  # a socket is writable at once; the reader must still be waiting
            assert not readable.done()
            loop.remove_writer(a)
            b.send(b"x")
            await readable
            loop.remove_reader(a)

        loop.run_until_complete(asyncio.wait_for(main(), 10))


def test_modify_while_waiting_changes_what_is_reported(loop):
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)

        async def main():
            calls = []
            loop.add_reader(a, calls.append, "read")   # parked in wait_readable
            await asyncio.sleep(0)
            loop.remove_reader(a)                       # cancel that wait
            b.send(b"data")                             # readable now, but nobody asked
            done = loop.create_future()
            loop.add_writer(a, lambda: done.done() or done.set_result(True))
            await done
            loop.remove_writer(a)
            await asyncio.sleep(0)
            assert calls == []
            loop.add_reader(a, lambda: calls.append(a.recv(10)))  # a new wait sees the pending data
            while not calls:
                await asyncio.sleep(0)
            loop.remove_reader(a)
            return calls

        assert loop.run_until_complete(asyncio.wait_for(main(), 10)) == [b"data"]


def test_reader_removed_then_fd_closed_does_not_disturb_trio(loop):
    async def main():
        for _ in range(20):
            a, b = socket.socketpair()
            loop.add_reader(a, lambda: None)
            await asyncio.sleep(0)
            loop.remove_reader(a)
            a.close()
            b.close()
        # The fd numbers are reused by the next pair; trio must not confuse them.
        a, b = socket.socketpair()
        with a, b:
            fut = loop.create_future()
            loop.add_reader(a, lambda: fut.done() or fut.set_result(a.recv(10)))
            b.send(b"fresh")
            try:
                return await fut
            finally:
                loop.remove_reader(a)

    assert loop.run_until_complete(asyncio.wait_for(main(), 10)) == b"fresh"


def test_notify_closing_by_trio_code_wakes_a_per_fd_watch(loop, waiting):
    # The kernel drops a closed fd from trio's epoll set silently. notify_closing is what trio code does
    # before closing; a per-fd watch then reports an error and the callback runs. (Multiplexed, trio never
    # sees the loop's fds, so notify_closing cannot reach them: the inner poller forgets a closed fd as epoll
    # does, and a callback that closed its own fd is found after its pass, see test_waiting.py.)
    if waiting != "per-fd":
        pytest.skip("notify_closing only reaches fds trio itself waits on")
    a, b = socket.socketpair()  # b stays open: nothing but notify_closing can wake the reader

    async def main():
        fut = loop.create_future()
        loop.add_reader(a.fileno(), lambda: fut.done() or fut.set_result("called"))
        for _ in range(3):  # each pass checkpoints: the watch task runs and reaches trio's wait
            await asyncio.sleep(0)
        trio.lowlevel.notify_closing(a.fileno())
        try:
            return await fut
        finally:
            loop.remove_reader(a.fileno())
            a.close()
            b.close()

    assert loop.run_until_complete(asyncio.wait_for(main(), 10)) == "called"


def test_closed_fd_is_refused_at_registration(loop):
    a, b = socket.socketpair()
    fd = a.fileno()
    a.close()
    b.close()
    with pytest.raises(multiloop.BadFdError, match=f"trio: cannot watch fd {fd}"):
        loop.add_reader(fd, lambda: None)


def test_regular_file_is_always_readable(loop):
    with tempfile.TemporaryFile() as f:
        async def main():
            fut = loop.create_future()
            loop.add_reader(f.fileno(), lambda: fut.done() or fut.set_result(True))
            try:
                return await fut
            finally:
                loop.remove_reader(f.fileno())

        assert loop.run_until_complete(asyncio.wait_for(main(), 10)) is True


def test_poller_poll_reports_ready_fd_outside_a_loop():
    poller = multiloop_trio.TrioPoller()
    a, b = socket.socketpair()
    with a, b:
        poller.register(a.fileno(), multiloop.READ | multiloop.WRITE)
        assert poller.poll(0) == [(a.fileno(), multiloop.WRITE)]
        b.send(b"x")
        assert dict(poller.poll(None))[a.fileno()] & multiloop.READ
        poller.unregister(a.fileno())
        assert poller.poll(0) == []
    poller.close()


def test_run_forever_inside_trio_is_refused_with_advice(loop):
    async def trio_main():
        with pytest.raises(RuntimeError, match="open_loop"):
            loop.run_until_complete(asyncio.sleep(0))

    trio.run(trio_main)


def test_trio_as_aio_works_under_run_until_complete(loop):
    async def trio_part(x):
        await trio.sleep(0)
        return sniffio.current_async_library(), x

    async def main():
        return await multiloop_trio.trio_as_aio(trio_part)(7)

    assert loop.run_until_complete(main()) == ("trio", 7)


def test_asyncio_async_generators_are_finalized_by_asyncio(loop):
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(0)  # needs asyncio: trio's finalizer would fail here
            closed.append(sniffio.current_async_library())

    async def main():
        g = agen()
        assert await g.__anext__() == 1
        return g

    g = loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert closed == ["asyncio"]
    del g


def test_signal_handler_added_in_one_run_fires_in_a_later_run(loop):
    # trio.run installs its own signal wakeup fd at start; the loop's must survive that.
    got = []
    loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
    try:
        async def main(n):
            signal.raise_signal(signal.SIGUSR1)
            while len(got) < n:
                await asyncio.sleep(0.001)

        loop.run_until_complete(asyncio.wait_for(main(1), 10))
        loop.run_until_complete(asyncio.wait_for(main(2), 10))  # and again in a third trio.run
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert got == ["usr1", "usr1"]
    assert signal.set_wakeup_fd(-1) == -1  # nothing left installed


def test_signal_handler_inside_open_loop():
    async def aio_main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, fut.set_result, "usr1")
        try:
            signal.raise_signal(signal.SIGUSR1)
            return await asyncio.wait_for(fut, 10)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    async def main():
        async with multiloop_trio.open_loop():
            return await multiloop_trio.aio_as_trio(aio_main)()

    assert trio.run(main) == "usr1"


def test_poll_zero_reports_every_fd_that_is_ready_already():
    """poll(0) may only say "nothing" after trio looked at the kernel with every fd registered."""
    poller = multiloop_trio.TrioPoller()
    pairs = [socket.socketpair() for _ in range(20)]
    try:
        for a, b in pairs:
            poller.register(a.fileno(), multiloop.READ)
            b.send(b"x")
        ready = dict(poller.poll(0))
        assert {a.fileno() for a, _ in pairs} == set(ready)
        assert all(ev & multiloop.READ for ev in ready.values())
    finally:
        poller.close()
        for a, b in pairs:
            a.close()
            b.close()


def test_production_code_does_not_import_trio_testing():
    code = ("import sys, socket, multiloop, multiloop_trio; p = multiloop_trio.TrioPoller(); "
            "a, b = socket.socketpair(); p.register(a.fileno(), multiloop.READ); p.poll(0); p.close(); "
            "lp = multiloop.new_loop('trio'); lp.run_until_complete(__import__('asyncio').sleep(0)); lp.close(); "
            "print(sorted(m for m in sys.modules if m.startswith('trio.testing')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
