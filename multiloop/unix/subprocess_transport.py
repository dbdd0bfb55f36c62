"""The subprocess transport behind ``subprocess_exec`` / ``subprocess_shell``.

Written for multiloop rather than adapted from ``asyncio.base_subprocess`` (a private module whose
internals changed in 3.12 and 3.13), because what a subprocess transport must do is small and fully
specified by the public types that consume it:

- ``asyncio.SubprocessProtocol`` gets ``connection_made`` (only after every pipe is connected), then
  ``pipe_data_received(fd, data)`` / ``pipe_connection_lost(fd, exc)`` / ``process_exited()``, and
  ``connection_lost(None)`` last, once the process has exited *and* every pipe is closed. Events that happen
  before ``connection_made`` (a child that exits at once) are queued and delivered after it.
- ``asyncio.subprocess.Process`` (unchanged) calls ``get_pid``, ``get_returncode``, ``get_pipe_transport``,
  ``send_signal``/``terminate``/``kill``, ``close`` and ``_wait()`` — the one private name it uses, a
  coroutine returning the exit code: at once if the exit is known, else (3.14+, CPython gh-119710) once the
  child has exited, after ``process_exited``, even if a grandchild keeps a pipe open; before 3.14 once the
  transport has finished (exited and all pipes closed). Each is that Python's stock rule.
- The pipes are ordinary multiloop pipe transports; each reports to a small per-fd protocol here.
- Only the ``subprocess.Popen`` object reaps the child (see :mod:`multiloop.unix.child_watcher`), so
  ``send_signal`` can go through ``Popen.send_signal``, which never signals a reaped (possibly recycled)
  pid; signalling an exited child is a no-op, as in asyncio.
- ``close()`` closes the pipes and kills the child if it is still running (asyncio's rule), without waiting.

Attribute names (``_proc``, ``_pid``, ``_returncode``, ``_pipes``, ``_loop``, ``_protocol``) match
asyncio's, because CPython's own tests and some libraries inspect them. What it shares with the fd
transports (protocol, closing state, the unclosed-at-collection warning) is
:class:`multiloop.transport_base.TransportBase`.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from ..seams import Loop
from ..transport_base import TransportBase
from .child_watcher import reap_in_thread

logger = logging.getLogger("asyncio")

#: Python 3.14's Process.wait() rule (see the module docstring).
WAIT_RETURNS_AT_EXIT = sys.version_info >= (3, 14)


def _set_result_unless_done(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)


async def start_subprocess(loop: Loop, protocol: asyncio.BaseProtocol,
                           watch: Callable[[subprocess.Popen[bytes], Callable[[int], None]], object], args: Any,
                           shell: bool, stdin: Any, stdout: Any, stderr: Any, bufsize: int,
                           extra: dict[str, Any] | None, **kwargs: Any) -> SubprocessTransport:
    """Start the child, have ``watch(proc, on_exit)`` watch for its exit, connect its pipes; return the
    transport once ``protocol.connection_made`` has run. Popen's errors propagate and nothing is left behind;
    if connecting the pipes fails or is cancelled, the child is killed and waited for, as asyncio does."""
    transport = SubprocessTransport(loop, protocol, extra)
    proc = transport._start(args, shell, stdin, stdout, stderr, bufsize, **kwargs)
    watched = False
    try:
        watch(proc, transport._process_exited)
        watched = True
        await transport._connect_pipes()
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException:
        transport._abort_setup()
        if watched:
            await transport._wait_exited()
        else:
            reap_in_thread(proc, None)
        raise
    return transport


class _PipeProtocol(asyncio.Protocol):
    """Forwards one pipe's events to the subprocess transport, tagged with the child's fd number."""

    def __init__(self, owner: SubprocessTransport, fd: int) -> None:
        self.owner: SubprocessTransport | None = owner
        self.fd = fd
        self.pipe: asyncio.BaseTransport | None = None
        self.disconnected = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self.fd} pipe={self.pipe!r}>"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.pipe = transport

    def data_received(self, data: bytes) -> None:
        if self.owner is not None:
            self.owner._pipe_data_received(self.fd, data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.disconnected = True
        owner, self.owner = self.owner, None
        if owner is not None:
            owner._pipe_connection_lost(self.fd, exc)

    def pause_writing(self) -> None:
        if self.owner is not None:
            self.owner._protocol.pause_writing()

    def resume_writing(self) -> None:
        if self.owner is not None:
            self.owner._protocol.resume_writing()


class SubprocessTransport(TransportBase, asyncio.SubprocessTransport):
    """A child process and the pipe transports connected to its stdin/stdout/stderr."""

    def __init__(self, loop: Loop, protocol: asyncio.BaseProtocol,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(extra)
        self._loop = loop
        self._protocol = protocol
        self._closing = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._returncode: int | None = None
        self._finished = False
        self._pipes: dict[int, _PipeProtocol | None] = {}
        # Events before connection_made, delivered after it; None once connection_made is scheduled.
        self._pending_calls: list[tuple[Callable[..., object], tuple[Any, ...]]] | None = []
        self._exit_waiters: list[asyncio.Future[int]] = []  # resolved when finished (Process.wait)
        self._exited_waiters: list[asyncio.Future[int]] = []  # resolved at exit (failed setup)

    # ------------------------------------------------------------------------------------ starting
    def _start(self, args: Any, shell: bool, stdin: Any, stdout: Any, stderr: Any, bufsize: int,
               **kwargs: Any) -> subprocess.Popen[bytes]:
        for fd, spec in ((0, stdin), (1, stdout), (2, stderr)):
            if spec == subprocess.PIPE:
                self._pipes[fd] = None
        # bufsize=0: unbuffered FileIO objects, whose fds the pipe transports take over.
        try:
            proc = subprocess.Popen(args, shell=shell, stdin=stdin, stdout=stdout, stderr=stderr,
                                    universal_newlines=False, bufsize=bufsize, **kwargs)
        except BaseException:
            self._closing = True  # nothing started: nothing to kill, no ResourceWarning
            raise
        self._proc = proc
        self._pid = proc.pid
        self._extra["subprocess"] = proc
        return proc

    async def _connect_pipes(self) -> None:
        proc, loop = self._check_proc(), self._loop
        if proc.stdin is not None:
            _, proto = await loop.connect_write_pipe(lambda: _PipeProtocol(self, 0), proc.stdin)
            self._pipes[0] = proto
        if proc.stdout is not None:
            _, proto = await loop.connect_read_pipe(lambda: _PipeProtocol(self, 1), proc.stdout)
            self._pipes[1] = proto
        if proc.stderr is not None:
            _, proto = await loop.connect_read_pipe(lambda: _PipeProtocol(self, 2), proc.stderr)
            self._pipes[2] = proto
        pending, self._pending_calls = self._pending_calls or [], None
        loop.call_soon(self._protocol.connection_made, self)
        for callback, args in pending:
            loop.call_soon(callback, *args)
        # Return only once connection_made() has run: asyncio.subprocess.Process reads the streams the
        # protocol creates there.
        made = loop.create_future()
        loop.call_soon(_set_result_unless_done, made)
        await made

    def _abort_setup(self) -> None:
        """Starting failed or was cancelled after the child was created: close what is connected, close
        the pipe ends no transport took over yet, kill the child. The protocol never hears of it."""
        proc = self._check_proc()
        unconnected = [fd for fd, proto in self._pipes.items() if proto is None]
        for fd in unconnected:
            del self._pipes[fd]
        self.close()
        for fd in unconnected:
            stream = (proc.stdin, proc.stdout, proc.stderr)[fd]
            if stream is not None:
                stream.close()

    async def _wait_exited(self) -> int:
        if self._returncode is not None:
            return self._returncode
        waiter = self._loop.create_future()
        self._exited_waiters.append(waiter)
        return await waiter

    # ------------------------------------------------------------------------------------ public API
    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._closing:
            info.append("closed")
        if self._pid is not None:
            info.append(f"pid={self._pid}")
        if self._returncode is not None:
            info.append(f"returncode={self._returncode}")
        elif self._pid is not None:
            info.append("running")
        else:
            info.append("not started")
        for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
            proto = self._pipes.get(fd)
            if proto is not None:
                info.append(f"{name}={proto.pipe}")
        return f"<{' '.join(info)}>"

    def get_pid(self) -> int:
        return self._pid  # type: ignore[return-value]  # None only before the child is started

    def get_returncode(self) -> int | None:
        return self._returncode

    def get_pipe_transport(self, fd: int) -> asyncio.BaseTransport | None:
        proto = self._pipes.get(fd)
        return proto.pipe if proto is not None else None

    def _check_proc(self) -> subprocess.Popen[bytes]:
        """The child, or ProcessLookupError once the transport has finished (asyncio's rule)."""
        if self._proc is None:
            raise ProcessLookupError()
        return self._proc

    def send_signal(self, signal: int) -> None:
        self._check_proc().send_signal(signal)

    def terminate(self) -> None:
        self._check_proc().terminate()

    def kill(self) -> None:
        self._check_proc().kill()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        for proto in self._pipes.values():
            if proto is not None and proto.pipe is not None:
                proto.pipe.close()
        proc = self._proc
        # poll(): the child may have exited without the loop having been told yet; do not kill then.
        if proc is not None and self._returncode is None and proc.poll() is None:
            if self._loop.get_debug():
                logger.warning("Close running child process: kill %r", self)
            try:
                proc.kill()
            except (ProcessLookupError, PermissionError):
                pass  # exited meanwhile, or a setuid child we may not signal

    def _holds_resources(self) -> bool:
        return not self._closing

    def _release_at_collection(self) -> None:
        self.close()  # closes the pipes (at once if the loop is closed) and kills a running child

    # --------------------------------------------------------------------------------- events in
    def _call(self, callback: Callable[..., object], *args: Any) -> None:
        if self._pending_calls is not None:
            self._pending_calls.append((callback, args))
        else:
            self._loop.call_soon(callback, *args)

    def _pipe_data_received(self, fd: int, data: bytes) -> None:
        self._call(self._protocol.pipe_data_received, fd, data)

    def _pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self._call(self._protocol.pipe_connection_lost, fd, exc)
        self._try_finish()

    def _process_exited(self, returncode: int) -> None:
        if self._returncode is not None:
            return
        if self._loop.get_debug():
            logger.info("%r exited with return code %r", self, returncode)
        self._returncode = returncode
        proc = self._check_proc()
        if proc.returncode is None:
            proc.returncode = returncode
        for waiter in self._exited_waiters:
            if not waiter.done():
                waiter.set_result(returncode)
        self._exited_waiters = []
        self._call(self._protocol.process_exited)
        self._try_finish()
        if WAIT_RETURNS_AT_EXIT:
            for waiter in self._exit_waiters:
                if not waiter.done():
                    waiter.set_result(returncode)
            self._exit_waiters = []

    def _try_finish(self) -> None:
        if self._finished or self._returncode is None:
            return
        if all(proto is not None and proto.disconnected for proto in self._pipes.values()):
            self._finished = True
            self._call(self._call_connection_lost, None)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            returncode = self._returncode
            assert returncode is not None  # finishing needs the exit status
            for waiter in self._exit_waiters:
                if not waiter.done():
                    waiter.set_result(returncode)
            self._exit_waiters = []
            self._proc = None
            self._protocol = None

    async def _wait(self) -> int:
        """The exit code (``Process.wait`` uses it). As in asyncio: at once if the exit is already known,
        else at exit (3.14+), or before 3.14 when the transport finishes (exited and every pipe closed)."""
        if self._returncode is not None:
            return self._returncode
        waiter = self._loop.create_future()
        self._exit_waiters.append(waiter)
        return await waiter
