"""add_signal_handler / remove_signal_handler on every backend, and Ctrl-C through multiloop.run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import multiloop


@pytest.fixture(autouse=True)
def restore_signal_state():
    """Whatever a test does, leave SIGUSR1/SIGUSR2/SIGHUP and the wakeup fd as they were."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    signal.set_wakeup_fd(wakeup)


def test_handler_runs_in_the_loop_with_its_arguments(loop, run):
    async def main():
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, lambda *a: got.done() or got.set_result(a), "x", 2)
        os.kill(os.getpid(), signal.SIGUSR1)
        return await got

    assert run(main()) == ("x", 2)


def test_each_signal_calls_the_handler_again(loop, run):
    async def main():
        calls = []
        third = loop.create_future()

        def handler():
            calls.append(1)
            if len(calls) == 3:
                third.set_result(None)

        loop.add_signal_handler(signal.SIGUSR1, handler)
        for _ in range(3):
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.sleep(0.01)  # separate deliveries (the kernel merges pending duplicates)
        await third
        return len(calls)

    assert run(main()) == 3


def test_signal_wakes_a_loop_blocked_with_nothing_else_to_do(loop, run):
    async def main():
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR2, got.set_result, "woken")
        # Sent from a thread after the loop has blocked: only the wakeup fd can wake it.
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR2)).start()
        return await got

    assert run(main()) == "woken"


def test_handler_that_raises_goes_to_exception_handler_and_loop_keeps_running(loop, run):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def main():
        def bad():
            raise ZeroDivisionError("in a signal handler")

        loop.add_signal_handler(signal.SIGUSR1, bad)
        os.kill(os.getpid(), signal.SIGUSR1)
        while not contexts:
            await asyncio.sleep(0.001)
        return "still running"

    assert run(main()) == "still running"
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)


def test_remove_restores_default_disposition(loop):
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN)
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


def test_remove_sigint_restores_default_int_handler(loop):
    saved = signal.getsignal(signal.SIGINT)
    try:
        loop.add_signal_handler(signal.SIGINT, lambda: None)
        loop.remove_signal_handler(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, saved)


def test_previous_wakeup_fd_is_restored_when_last_handler_goes(loop):
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        signal.set_wakeup_fd(w)
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        loop.add_signal_handler(signal.SIGUSR2, lambda: None)
        assert signal.set_wakeup_fd(signal.set_wakeup_fd(-1)) != w  # ours while handlers exist
        loop.remove_signal_handler(signal.SIGUSR1)
        loop.remove_signal_handler(signal.SIGUSR2)
        assert signal.set_wakeup_fd(-1) == w
    finally:
        os.close(r)
        os.close(w)


def test_close_removes_handlers_and_wakeup_fd(backend):
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    lp = multiloop.new_loop(backend)
    lp.add_signal_handler(signal.SIGUSR1, lambda: None)
    lp.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert signal.set_wakeup_fd(before) == before


def test_two_loops_stacked_restore_in_any_order(backend):
    a = multiloop.new_loop(backend)
    b = multiloop.new_loop(backend)
    try:
        a.add_signal_handler(signal.SIGUSR1, lambda: None)
        b.add_signal_handler(signal.SIGUSR2, lambda: None)
        a.remove_signal_handler(signal.SIGUSR1)  # b's pipe must stay the wakeup fd
        current = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(current)
        assert current == b._signal_wfd
        b.remove_signal_handler(signal.SIGUSR2)  # a gave up its pipe: back to nothing, not a's stale fd
        assert signal.set_wakeup_fd(-1) == -1
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("sig", [0, -1, 4096])
def test_invalid_signal_number_is_value_error(loop, sig):
    with pytest.raises(ValueError, match="invalid signal number"):
        loop.add_signal_handler(sig, lambda: None)
    with pytest.raises(ValueError, match="invalid signal number"):
        loop.remove_signal_handler(sig)


def test_non_int_signal_is_type_error(loop):
    with pytest.raises(TypeError, match="must be an int"):
        loop.add_signal_handler("SIGUSR1", lambda: None)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_uncatchable_signal_is_runtime_error_and_leaves_nothing_installed(loop, sig):
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    with pytest.raises(RuntimeError, match=f"sig {int(sig)} cannot be caught"):
        loop.add_signal_handler(sig, lambda: None)
    assert signal.set_wakeup_fd(before) == before


def test_coroutine_callback_is_type_error(loop):
    async def handler():
        pass

    with pytest.raises(TypeError, match="coroutines cannot be used"):
        loop.add_signal_handler(signal.SIGUSR1, handler)
    coro = handler()
    with pytest.raises(TypeError, match="coroutines cannot be used"):
        loop.add_signal_handler(signal.SIGUSR1, coro)
    coro.close()


def test_closed_loop_is_runtime_error(backend):
    lp = multiloop.new_loop(backend)
    lp.close()
    with pytest.raises(RuntimeError, match="closed"):
        lp.add_signal_handler(signal.SIGUSR1, lambda: None)


def test_non_main_thread_is_runtime_error(loop):
    outcome = []

    def other_thread():
        try:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            outcome.append(exc)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert len(outcome) == 1 and type(outcome[0]) is RuntimeError, outcome
    assert "main thread" in str(outcome[0])
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


CTRL_C_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    import multiloop

    async def main():
        print("ready", flush=True)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            print("main task cancelled", flush=True)
            raise

    multiloop.run(main(), backend=sys.argv[1])
    print("not reached", flush=True)
""")


def test_ctrl_c_cancels_main_task_then_raises_keyboard_interrupt(backend, tmp_path):
    script = tmp_path / "app.py"
    script.write_text(CTRL_C_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), backend], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        if line != b"ready\n":
            proc.kill()
            pytest.fail(f"child did not start: {line!r} {proc.communicate()[1].decode()}")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert out == b"main task cancelled\n"
    assert b"KeyboardInterrupt" in err
    assert proc.returncode in (-signal.SIGINT, 1, 130)


CTRL_C_WITH_CHILD_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    import multiloop

    async def main():
        proc = await asyncio.create_subprocess_exec("sleep", "60")
        print("ready", flush=True)
        try:
            await proc.wait()
        except asyncio.CancelledError:
            proc.kill()
            print("main task cancelled", flush=True)
            raise

    multiloop.run(main(), backend=sys.argv[1])
""")


@pytest.mark.parametrize("watcher", ["pidfd", "thread"])
def test_ctrl_c_while_waiting_for_a_child(backend, tmp_path, watcher):
    """With the thread child watcher, a waiting thread exists: Ctrl-C must still reach the loop promptly."""
    from multiloop.unix.child_watcher import ENV_VAR, pidfd_available

    if watcher == "pidfd" and not pidfd_available():
        pytest.skip("no pidfd here")
    script = tmp_path / "app.py"
    script.write_text(CTRL_C_WITH_CHILD_SCRIPT)
    env = dict(os.environ, **{ENV_VAR: watcher})
    proc = subprocess.Popen([sys.executable, str(script), backend], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        line = proc.stdout.readline()
        if line != b"ready\n":
            proc.kill()
            pytest.fail(f"child did not start: {line!r} {proc.communicate()[1].decode()}")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert out == b"main task cancelled\n"
    assert b"KeyboardInterrupt" in err
