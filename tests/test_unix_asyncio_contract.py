"""The few things multiloop's Unix code relies on in asyncio's *public* types that asyncio does not document.

multiloop reuses no private asyncio module (no base_subprocess, no unix_events): its subprocess transport is
its own. But ``asyncio.subprocess.Process`` (public) talks to whatever transport the loop returns through
one private name, ``transport._wait()``, and ``SubprocessStreamProtocol`` reads the pipe transports in
``connection_made``. If a Python release changes that, these tests fail first and say what changed.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

PY = f"Python {sys.version.split()[0]}"


class FakeTransport(asyncio.SubprocessTransport):
    def __init__(self) -> None:
        super().__init__()
        self.waited = False

    def get_pid(self) -> int:
        return 12345

    def get_returncode(self) -> int | None:
        return 3 if self.waited else None

    def get_pipe_transport(self, fd: int) -> None:
        return None

    async def _wait(self) -> int:
        self.waited = True
        return 3


def test_process_wait_delegates_to_transport_wait():
    async def main():
        loop = asyncio.get_running_loop()
        protocol = asyncio.subprocess.SubprocessStreamProtocol(limit=2 ** 16, loop=loop)
        transport = FakeTransport()
        protocol.connection_made(transport)
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        return await proc.wait(), transport.waited

    try:
        result = asyncio.run(main())
    except Exception as exc:  # noqa: BLE001 - turned into a message that says what changed
        pytest.fail(f"{PY}: asyncio.subprocess.Process no longer works with a transport that provides the "
                    f"SubprocessTransport methods plus _wait(); multiloop/unix/subprocess_transport.py must "
                    f"follow the change ({exc!r})")
    assert result == (3, True), (
        f"{PY}: asyncio.subprocess.Process.wait() no longer calls transport._wait(); "
        f"multiloop/unix/subprocess_transport.py must provide what it calls now")


def test_stream_protocol_takes_pipes_from_get_pipe_transport_in_connection_made():
    calls = []

    class Recording(FakeTransport):
        def get_pipe_transport(self, fd):
            calls.append(fd)
            return None

    async def main():
        loop = asyncio.get_running_loop()
        protocol = asyncio.subprocess.SubprocessStreamProtocol(limit=2 ** 16, loop=loop)
        protocol.connection_made(Recording())

    asyncio.run(main())
    assert sorted(calls) == [0, 1, 2], (
        f"{PY}: SubprocessStreamProtocol.connection_made() no longer asks get_pipe_transport(0/1/2); "
        f"multiloop's subprocess transport connects pipes before connection_made on that assumption")
