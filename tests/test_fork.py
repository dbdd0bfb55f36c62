"""After os.fork(): a child never silently shares the parent's poller, wake-up fd or signal pipe.

Each test forks; the child reports one line through a pipe and leaves with ``os._exit`` (no pytest teardown
in the child); the parent checks the report and that its own loop still works.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import traceback

import pytest

import multiloop

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def in_child(body) -> str:
    """Run ``body()`` in a forked child; return what it returned (a str) or its traceback."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            report = body()
        except BaseException:  # noqa: BLE001 - everything goes back to the parent
            report = "child raised:\n" + traceback.format_exc()
        try:
            os.write(w, report.encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return b"".join(chunks).decode()


async def answer() -> str:
    await asyncio.sleep(0)
    fut = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon_threadsafe(fut.set_result, "fresh loop works")
    return await fut


def assert_parent_loop_still_works(loop, run) -> None:
    r, w = os.pipe()
    try:
        got = loop.create_future()
        loop.add_reader(r, lambda: got.done() or got.set_result(os.read(r, 10)))
        os.write(w, b"ping")
        loop.call_soon_threadsafe(lambda: None)
        assert run(got) == b"ping"
        loop.remove_reader(r)
    finally:
        os.close(r)
        os.close(w)


def test_child_can_create_and_run_a_fresh_loop(loop, run, backend):
    run(asyncio.sleep(0))  # the parent's loop has been used

    def child():
        fresh = multiloop.new_loop(backend)
        try:
            return fresh.run_until_complete(answer())
        finally:
            fresh.close()

    assert in_child(child) == "fresh loop works"
    assert_parent_loop_still_works(loop, run)


def test_child_forked_inside_a_running_coroutine_can_run_a_fresh_loop(loop, run, backend):
    if backend == "trio":
        pytest.skip("trio's run state is thread-local and survives fork(): see "
                    "test_trio_child_forked_inside_a_callback_is_told_what_to_do")

    def child():
        fresh = multiloop.new_loop(backend)
        try:
            return fresh.run_until_complete(answer())
        finally:
            fresh.close()

    async def fork_from_here():
        return in_child(child)

    assert run(fork_from_here()) == "fresh loop works"
    assert_parent_loop_still_works(loop, run)


def test_trio_child_forked_inside_a_callback_is_told_what_to_do(loop, run, backend):
    """trio keeps "a run is active" per thread, and fork() copies the forking thread's state: the child can
    never call trio.run in that thread again. The refusal says so and what works instead (a new thread, another
    backend, exec); the first of those is tried here."""
    if backend != "trio":
        pytest.skip("about the trio backend")
    import threading

    def child():
        fresh = multiloop.new_loop("trio")
        try:
            fresh.run_until_complete(answer())
        except RuntimeError as exc:
            message = str(exc)
        else:
            return "no error"
        finally:
            fresh.close()
        results = []
        worker = threading.Thread(target=lambda: results.append(multiloop.run(answer(), backend="trio")))
        worker.start()
        worker.join(30)
        return f"{message}\nin a new thread: {results}"

    async def fork_from_a_callback():
        return in_child(child)

    report = run(fork_from_a_callback())
    message, _, after = report.partition("\nin a new thread: ")
    assert "was forked from pid" in message and "inside trio.run" in message, report
    assert "open_loop" not in message  # that advice needs a running trio program, which the child has not
    assert "new thread" in message and "backend='poll'" in message and "'spawn'" in message
    assert after == "['fresh loop works']", report
    assert_parent_loop_still_works(loop, run)


@pytest.mark.parametrize("operation", ["run_until_complete", "add_reader", "call_soon_threadsafe",
                                       "add_signal_handler", "subprocess_exec"])
def test_child_touching_the_inherited_loop_gets_loop_forked_error(loop, run, operation):
    run(asyncio.sleep(0))
    r, w = os.pipe()

    def child():
        actions = {
            "run_until_complete": lambda: loop.run_until_complete(asyncio.sleep(0)),
            "add_reader": lambda: loop.add_reader(r, lambda: None),
            "call_soon_threadsafe": lambda: loop.call_soon_threadsafe(lambda: None),
            "add_signal_handler": lambda: loop.add_signal_handler(signal.SIGUSR1, lambda: None),
            "subprocess_exec": lambda: loop.run_until_complete(
                loop.subprocess_exec(asyncio.SubprocessProtocol, "true")),
        }
        try:
            actions[operation]()
        except multiloop.LoopForkedError as exc:
            assert isinstance(exc, RuntimeError)
            return "LoopForkedError: " + str(exc)
        return "no error"

    try:
        report = in_child(child)
    finally:
        os.close(r)
        os.close(w)
    assert report.startswith("LoopForkedError: "), report
    assert "new_loop" in report  # the message says what to do instead
    assert_parent_loop_still_works(loop, run)


def test_parent_registrations_survive_the_child_closing_its_copy(loop, run):
    r, w = os.pipe()
    got = loop.create_future()
    loop.add_reader(r, lambda: got.done() or got.set_result(os.read(r, 10)))

    def child():
        loop.close()  # closes only the child's copies; must not unregister anything in the shared poller
        return "closed"

    try:
        assert in_child(child) == "closed"
        os.write(w, b"after")
        assert run(got) == b"after"
        loop.remove_reader(r)
    finally:
        os.close(r)
        os.close(w)


def test_parent_registrations_survive_a_child_forked_inside_a_callback_closing_its_copy(loop, run):
    # Forked while the loop runs, the child's copy holds the backend's live waits (trio: tasks whose
    # cancellation would update the epoll object the child shares with the parent).
    r, w = os.pipe()
    got = loop.create_future()
    loop.add_reader(r, lambda: got.done() or got.set_result(os.read(r, 10)))

    def child():
        loop.close()
        return "closed"

    async def main():
        await asyncio.sleep(0)  # the reader is being waited for
        assert in_child(child) == "closed"
        os.write(w, b"after")
        return await got

    try:
        assert run(main()) == b"after"
        loop.remove_reader(r)
    finally:
        os.close(r)
        os.close(w)


def test_child_closes_its_copy_while_a_parent_thread_held_the_default_executors_lock(loop, run):
    """A fork from an executor worker can land while the thread that started that worker is still inside
    ``submit()``, holding the executor's lock (free-threaded builds do, about one fork in four); the child
    inherits the lock held by a thread it does not have. Closing the inherited loop must not wait for it."""
    assert run(loop.run_in_executor(None, int, "7")) == 7  # the loop now has its default executor
    executor = loop._default_executor
    # ThreadPoolExecutor's (private) lock, taken by submit() and shutdown(): renamed, this fails loudly here.
    lock = executor._shutdown_lock
    held, release = threading.Event(), threading.Event()

    def hold():
        with lock:  # as submit() does while its new worker may already be forking
            held.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()

    def child():
        assert lock.locked()  # the state under test: held, and nobody in this process will release it
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(60)  # a close() that waits for the lock kills the child (a failure, not a hung test)
        loop.close()
        return "closed"

    try:
        report = in_child(child)
    finally:
        release.set()
        holder.join()
    assert report == "closed"
    assert run(loop.run_in_executor(None, int, "8")) == 8  # the parent's executor is untouched
    assert_parent_loop_still_works(loop, run)


def test_child_does_not_inherit_the_parents_signal_wakeup_or_handlers(loop, run):
    saved = signal.getsignal(signal.SIGUSR1)
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    try:
        def child():
            wakeup = signal.set_wakeup_fd(-1)
            disposition = signal.getsignal(signal.SIGUSR1)
            return f"{wakeup} {disposition == signal.SIG_DFL}"

        assert in_child(child) == "-1 True"
        # The parent's handler is untouched.
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, lambda: got.done() or got.set_result("parent"))
        os.kill(os.getpid(), signal.SIGUSR1)
        assert run(got) == "parent"
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
        signal.signal(signal.SIGUSR1, saved)


def test_child_signals_reach_a_fresh_loop_in_the_child(loop, backend):
    saved = signal.getsignal(signal.SIGUSR1)
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    try:
        def child():
            fresh = multiloop.new_loop(backend)
            try:
                async def main():
                    got = fresh.create_future()
                    fresh.add_signal_handler(signal.SIGUSR1, got.set_result, "child handler ran")
                    os.kill(os.getpid(), signal.SIGUSR1)
                    return await asyncio.wait_for(got, 10)
                return fresh.run_until_complete(main())
            finally:
                fresh.close()

        assert in_child(child) == "child handler ran"
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
        signal.signal(signal.SIGUSR1, saved)
