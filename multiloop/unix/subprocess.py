"""``subprocess_exec`` / ``subprocess_shell``: start a child, connect its pipes, watch for its exit.

The argument checks and their messages are asyncio's (``universal_newlines``, ``text``, ``encoding``,
``errors`` must be off, ``bufsize`` 0, ``shell`` consistent with the method), so ``asyncio.create_subprocess_*``
report the same errors on multiloop. Everything else ``subprocess.Popen`` accepts is passed through; Popen's
own errors (FileNotFoundError for a missing program, PermissionError for a non-executable file) reach the
caller unchanged, and nothing is left behind.

No child watcher object is shared between loops: each loop watches its own children (pidfd or a thread per
child, :mod:`multiloop.unix.child_watcher`) and, when closed, hands still-running children to reaper threads.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Callable
from typing import Any, TypeVar

from ..seams import Loop
from .child_watcher import ChildWatch
from .subprocess_transport import SubprocessTransport, start_subprocess

logger = logging.getLogger("asyncio")

_ProtocolT = TypeVar("_ProtocolT", bound=asyncio.BaseProtocol)


def _check_text_args(universal_newlines: Any, bufsize: Any, text: Any, encoding: Any, errors: Any) -> None:
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


class SubprocessMixin(Loop):
    """Subprocess support; see the module docstring."""

    _child_watches: set[ChildWatch] | None = None  # created on first use

    async def subprocess_shell(self, protocol_factory: Callable[[], _ProtocolT], cmd: str | bytes,
                               *, stdin: Any = subprocess.PIPE, stdout: Any = subprocess.PIPE,
                               stderr: Any = subprocess.PIPE, universal_newlines: bool = False,
                               shell: bool = True, bufsize: int = 0, encoding: str | None = None,
                               errors: str | None = None, text: bool | None = None,
                               **kwargs: Any) -> tuple[asyncio.SubprocessTransport, _ProtocolT]:
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if not shell:
            raise ValueError("shell must be True")
        _check_text_args(universal_newlines, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        if self.get_debug():
            logger.debug("run shell command (multiloop backend %s)", self.backend)
        transport = await self._make_subprocess_transport(protocol, cmd, True, stdin, stdout, stderr, bufsize,
                                                          **kwargs)
        return transport, protocol

    async def subprocess_exec(self, protocol_factory: Callable[[], _ProtocolT], program: Any,
                              *args: Any, stdin: Any = subprocess.PIPE, stdout: Any = subprocess.PIPE,
                              stderr: Any = subprocess.PIPE, universal_newlines: bool = False,
                              shell: bool = False, bufsize: int = 0, encoding: str | None = None,
                              errors: str | None = None, text: bool | None = None,
                              **kwargs: Any) -> tuple[asyncio.SubprocessTransport, _ProtocolT]:
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if shell:
            raise ValueError("shell must be False")
        _check_text_args(universal_newlines, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        if self.get_debug():
            # Never log the arguments: they may hold secrets.
            logger.debug("execute program %r (multiloop backend %s)", program, self.backend)
        transport = await self._make_subprocess_transport(protocol, (program, *args), False, stdin, stdout,
                                                          stderr, bufsize, **kwargs)
        return transport, protocol

    async def _make_subprocess_transport(self, protocol: asyncio.BaseProtocol, args: Any, shell: bool,
                                         stdin: Any, stdout: Any, stderr: Any, bufsize: int,
                                         extra: dict[str, Any] | None = None,
                                         **kwargs: Any) -> SubprocessTransport:
        self._check_closed()
        transport = await start_subprocess(self, protocol, self._watch_child, args, shell, stdin, stdout, stderr,
                                           bufsize, extra, **kwargs)
        if self.get_debug():
            logger.info("%r started", transport)
        return transport

    def _watch_child(self, proc: subprocess.Popen[bytes], on_exit: Callable[[int], None]) -> None:
        watches = self._child_watches
        if watches is None:
            watches = self._child_watches = set()
        watches.add(ChildWatch(self, proc, on_exit, forget=watches.discard))

    def close(self) -> None:
        super().close()
        watches, self._child_watches = self._child_watches, None
        for watch in watches or ():
            watch.detach()
