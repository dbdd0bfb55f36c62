"""Subprocesses on every backend, with both child watchers (pidfd, thread)."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

import multiloop
from multiloop.unix import child_watcher_kind
from multiloop.unix.child_watcher import ENV_VAR, pidfd_available

PY = sys.executable
WATCHERS = ["pidfd", "thread"] if pidfd_available() else ["thread"]


@pytest.fixture(params=WATCHERS)
def watcher(request, monkeypatch) -> str:
    monkeypatch.setenv(ENV_VAR, request.param)
    return request.param


def assert_no_children_left() -> None:
    """Every child this process started has been reaped: no zombies, nobody left to wait for."""
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


# ----------------------------------------------------------------------------------- the watcher probe
def test_child_watcher_kind_is_pidfd_where_available(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert child_watcher_kind() == ("pidfd" if pidfd_available() else "thread")


def test_child_watcher_kind_can_be_forced_to_thread(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "thread")
    assert child_watcher_kind() == "thread"


def test_child_watcher_kind_rejects_unknown_values(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "sigchld")
    with pytest.raises(ValueError, match=ENV_VAR):
        child_watcher_kind()


def test_child_watcher_kind_is_exported():
    assert multiloop.unix.child_watcher_kind is child_watcher_kind


# ---------------------------------------------------------------------------------- asyncio.subprocess
def test_communicate_round_trips_stdin_stdout_stderr(loop, run, watcher):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d[::-1]); "
                      "sys.stderr.write(str(len(d)))",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return await proc.communicate(b"abc" * 100_000), proc.returncode

    (out, err), rc = run(main())
    assert out == (b"abc" * 100_000)[::-1]
    assert err == b"300000"
    assert rc == 0
    assert_no_children_left()


def test_shell_exit_status(loop, run, watcher):
    async def main():
        proc = await asyncio.create_subprocess_shell("exit 7")
        return await proc.wait()

    assert run(main()) == 7


def test_wait_returns_negative_signal_after_kill(loop, run, watcher):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(60)")
        proc.kill()
        return await proc.wait()

    assert run(main()) == -signal.SIGKILL


GRANDCHILD_HOLDS_PIPES = (
    "import subprocess, sys\n"
    "subprocess.run([sys.executable, '-c', 'import sys; sys.stdout.write(\"ready\"); sys.stdout.flush(); "
    "sys.stdin.read()'])\n"
)


def test_wait_with_a_grandchild_holding_the_pipes_follows_this_pythons_rule(loop, run, watcher):
    # 3.14+ (CPython gh-119710): wait() returns once the child exits. Before: once every pipe is closed too.
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", GRANDCHILD_HOLDS_PIPES, stdin=subprocess.PIPE,
                                                    stdout=subprocess.PIPE)
        waiting = asyncio.ensure_future(proc.wait())
        assert await proc.stdout.readexactly(5) == b"ready"
        proc.kill()
        if sys.version_info >= (3, 14):
            assert await waiting == -signal.SIGKILL
        else:
            while proc.returncode is None:  # the exit is known...
                await asyncio.sleep(0.01)
            for _ in range(10):
                await asyncio.sleep(0)
            assert not waiting.done()  # ...but wait() still waits for the pipes
        proc.stdin.close()  # the grandchild exits
        await proc.stdout.read()
        assert await waiting == -signal.SIGKILL

    run(main())


def test_terminate(loop, run, watcher):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(60)")
        proc.terminate()
        return await proc.wait()

    assert run(main()) == -signal.SIGTERM


def test_send_signal_reaches_the_child(loop, run, watcher):
    # Short sleeps in a loop: a signal landing between the print and a long sleep() is handled only when the
    # interpreter next runs bytecode (CPython 3.14 can enter the sleep with the handler still pending).
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGUSR1, lambda *a: sys.exit(42))\n"
            "print('ready', flush=True)\n"
            "for _ in range(600): time.sleep(0.1)\n")

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdout=subprocess.PIPE)
        assert await proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGUSR1)
        return await proc.wait()

    assert run(main()) == 42


def test_signalling_a_finished_child_is_process_lookup_error_as_in_asyncio(loop, run, watcher):
    # asyncio's rule: ProcessLookupError once the transport has *finished* (connection_lost). Process.wait()
    # alone is not that point: from 3.14 it returns at exit, and whenever the exit is already known when wait()
    # is called, it returns before the queued connection_lost has run (stock asyncio the same).
    async def main():
        transport, proto = await loop.subprocess_exec(lambda: EventLog(loop), PY, "-c", "pass")
        await proto.done
        with pytest.raises(ProcessLookupError):
            transport.send_signal(signal.SIGTERM)
        with pytest.raises(ProcessLookupError):
            transport.kill()
        with pytest.raises(ProcessLookupError):
            transport.terminate()
        transport.close()
        return transport.get_returncode()

    assert run(main()) == 0


def test_signalling_an_exited_but_unreported_child_is_a_no_op(loop, run):
    async def main():
        transport, proto = await loop.subprocess_exec(lambda: EventLog(loop), PY, "-c", "pass")
        transport.get_extra_info("subprocess").wait()  # exited, the loop not told yet
        transport.send_signal(signal.SIGTERM)  # must not signal a (possibly recycled) pid
        await proto.done
        transport.close()
        return transport.get_returncode()

    assert run(main()) == 0


def test_stdout_devnull_and_stderr_to_stdout(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; print('out'); print('err', file=sys.stderr)",
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, err = await proc.communicate()
        return out, err

    out, err = run(main())
    assert sorted(out.split()) == [b"err", b"out"]
    assert err is None


def test_devnull_output(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "print('gone')", stdout=subprocess.DEVNULL)
        return await proc.communicate()

    assert run(main()) == (None, None)


def test_stdio_from_file_objects_and_fds(loop, run, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"from a file")
    dst = tmp_path / "out.txt"

    async def main():
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())",
                stdin=fin, stdout=fout.fileno())
            return await proc.wait()

    assert run(main()) == 0
    assert dst.read_bytes() == b"from a file"


def test_child_reading_stdin_redirected_from_file_reads_it_through_a_pipe_transport(loop, run, tmp_path):
    """``python script.py < file``, the child itself using multiloop on this loop's backend."""
    data = tmp_path / "data.txt"
    data.write_bytes(b"abc\n" * 10_000)
    script = ("import asyncio, sys, multiloop\n"
              "async def main():\n"
              "    loop = asyncio.get_running_loop()\n"
              "    r = asyncio.StreamReader()\n"
              "    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(r), sys.stdin.buffer)\n"
              "    print(len(await r.read()))\n"
              f"multiloop.run(main(), backend={loop.backend!r})\n")

    app = tmp_path / "script.py"
    app.write_text(script)

    async def main():
        cmd = f"{shlex.quote(PY)} {shlex.quote(str(app))} < {shlex.quote(str(data))}"
        proc = await asyncio.create_subprocess_shell(cmd, stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        return out, proc.returncode

    out, rc = run(main())
    assert rc == 0
    assert out.strip() == b"40000"


def test_stdout_stream_supports_flow_control(loop, run):
    """Much more output than the StreamReader limit: it pauses the pipe, reads resume it, nothing lost."""
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; sys.stdout.buffer.write(b'q' * 2_000_000)", stdout=subprocess.PIPE, limit=1024)
        total = 0
        while chunk := await proc.stdout.read(10_000):
            total += len(chunk)
            await asyncio.sleep(0)
        await proc.wait()
        return total

    assert run(main()) == 2_000_000


def test_stdin_closed_by_child_is_ignored_by_communicate(loop, run, watcher):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import os; os.close(0)", stdin=subprocess.PIPE)
        await proc.communicate(b"x" * 1_000_000)  # BrokenPipeError swallowed, as asyncio does
        return proc.returncode

    assert run(main()) == 0


def test_stdin_write_to_exited_child_raises_on_drain(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass", stdin=subprocess.PIPE)
        await proc.wait()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(100):
                proc.stdin.write(b"x" * 100_000)
                await proc.stdin.drain()
        proc.stdin.close()

    run(main())


def test_many_concurrent_children_all_reaped_without_fd_leaks(loop, run, watcher):
    async def one(i):
        # echo, not a Python child: 200 interpreter start-ups per case cost CI a minute and test nothing more.
        proc = await asyncio.create_subprocess_exec("echo", str(i), stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        return int(out)

    async def main():
        return await asyncio.gather(*(one(i) for i in range(200)))

    assert run(main(), timeout=120) == list(range(200))
    assert_no_children_left()


def test_many_concurrent_sleeping_children_all_reaped(loop, run, watcher):
    async def main():
        procs = [await asyncio.create_subprocess_exec("sleep", "0.2") for _ in range(200)]
        return await asyncio.gather(*(p.wait() for p in procs))

    assert run(main(), timeout=120) == [0] * 200
    assert_no_children_left()


# ------------------------------------------------------------------------------- protocol-level API
class EventLog(asyncio.SubprocessProtocol):
    def __init__(self, loop):
        self.events: list = []
        self.out = bytearray()
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.events.append("made")

    def pipe_data_received(self, fd, data):
        self.out += data

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd))

    def process_exited(self):
        self.events.append("exited")

    def connection_lost(self, exc):
        self.events.append("lost")
        self.done.set_result(None)


def test_protocol_sees_made_first_and_lost_last(loop, run, watcher):
    async def main():
        transport, proto = await loop.subprocess_exec(lambda: EventLog(loop), PY, "-c", "print('hi')",
                                                      stdin=None, stderr=None)
        assert transport.get_pid() > 0
        assert transport.get_pipe_transport(1) is not None
        assert transport.get_pipe_transport(0) is None
        await proto.done
        rc = transport.get_returncode()
        transport.close()
        return proto, rc

    proto, rc = run(main())
    assert rc == 0
    assert bytes(proto.out) == b"hi\n"
    assert proto.events[0] == "made" and proto.events[-1] == "lost"
    assert set(proto.events[1:-1]) == {"exited", ("pipe_lost", 1)}


def test_events_of_a_child_that_exits_at_once_come_after_connection_made(loop, run):
    async def main():
        transport, proto = await loop.subprocess_shell(lambda: EventLog(loop), "true")
        await proto.done
        transport.close()
        return proto

    proto = run(main())
    assert proto.events[0] == "made" and proto.events[-1] == "lost"


def test_transport_close_kills_a_running_child(loop, run, watcher):
    async def main():
        transport, proto = await loop.subprocess_exec(lambda: EventLog(loop), "sleep", "60")
        transport.close()
        await proto.done
        return transport.get_returncode()

    assert run(main()) == -signal.SIGKILL
    assert_no_children_left()


def test_transport_repr_and_extra_info(loop, run):
    async def main():
        transport, proto = await loop.subprocess_exec(lambda: EventLog(loop), PY, "-c", "pass")
        assert isinstance(transport.get_extra_info("subprocess"), subprocess.Popen)
        assert "pid=" in repr(transport)
        await proto.done
        transport.close()

    run(main())


def test_cancelled_creation_kills_and_reaps_the_child(loop, run, watcher):
    async def main():
        task = asyncio.ensure_future(asyncio.create_subprocess_exec("sleep", "60", stdout=subprocess.PIPE))
        loop.call_soon(task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert_no_children_left()


def test_loop_closed_with_a_running_child_reaps_it_and_closes_its_pidfd(backend, watcher):
    lp = multiloop.new_loop(backend)

    async def start():
        return await asyncio.create_subprocess_exec("sleep", "0.3")

    proc = lp.run_until_complete(start())
    pid = proc.pid
    lp.close()  # the fd leak check of other tests would catch a pidfd left open; here: look directly
    assert not any(os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[pidfd]"
                   for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}"))
    # A reaper thread waits for it: eventually it is gone without us calling waitpid.
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}"), "child left as a zombie"
    assert proc.returncode is None  # the closed loop was never told
    proc._transport.close()  # after the fact: must not kill anything (the child is gone) nor fail


# ------------------------------------------------------------------------------------------ bad input
def test_nonexistent_executable_is_file_not_found(loop, run):
    with pytest.raises(FileNotFoundError):
        run(asyncio.create_subprocess_exec("/nonexistent/program", stdout=subprocess.PIPE))
    assert_no_children_left()


def test_non_executable_file_is_permission_error(loop, run, tmp_path):
    path = tmp_path / "not-executable"
    path.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(PermissionError):
        run(asyncio.create_subprocess_exec(str(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    assert_no_children_left()


@pytest.mark.parametrize("kwargs, message", [
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"text": True}, "text must be False"),
    ({"bufsize": 1}, "bufsize must be 0"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
    ({"shell": True}, "shell must be False"),
])
def test_exec_rejects_text_mode_arguments(loop, run, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run(loop.subprocess_exec(asyncio.SubprocessProtocol, PY, "-c", "pass", **kwargs))


@pytest.mark.parametrize("kwargs, message", [
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"text": True}, "text must be False"),
    ({"bufsize": 1}, "bufsize must be 0"),
    ({"shell": False}, "shell must be True"),
])
def test_shell_rejects_text_mode_arguments(loop, run, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run(loop.subprocess_shell(asyncio.SubprocessProtocol, "true", **kwargs))


def test_shell_rejects_non_string_command(loop, run):
    with pytest.raises(ValueError, match="cmd must be a string"):
        run(loop.subprocess_shell(asyncio.SubprocessProtocol, ["true"]))


def test_invalid_popen_argument_is_type_error(loop, run):
    with pytest.raises(TypeError):
        run(loop.subprocess_exec(asyncio.SubprocessProtocol, PY, "-c", "pass", no_such_argument=1))


def test_subprocess_on_closed_loop_raises(backend):
    lp = multiloop.new_loop(backend)
    lp.close()
    coro = lp.subprocess_exec(asyncio.SubprocessProtocol, PY, "-c", "pass")
    with pytest.raises(RuntimeError, match="closed"):
        coro.send(None)
