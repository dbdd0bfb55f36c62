"""A user program written against multiloop's public API; ``tests/test_typing.py`` runs ``mypy --strict`` on it
with multiloop installed as a package (so its ``py.typed`` marker is what makes it type-checked)."""

from __future__ import annotations

import asyncio
import select

import multiloop


async def echo_once(host: str) -> bytes:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, host, 0)
    port: int = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"ping\n")
    line = await reader.readline()
    writer.close()
    server.close()
    await server.wait_closed()
    return line


def choose() -> str:
    name: str = multiloop.default_backend(require=[multiloop.Capability.UNLIMITED_FDS], avoid=["select"])
    for info in multiloop.backends():
        caps: frozenset[str] = info.capabilities
        reason: str | None = info.reason
        print(info.name, info.available, sorted(caps), reason)
    return name


def main() -> None:
    result: bytes = multiloop.run(echo_once("127.0.0.1"), backend=choose())
    print(result)
    loop: multiloop.EventLoop = multiloop.new_loop("poll")
    try:
        stats: multiloop.LoopStats = loop.stats()
        print(loop.backend, stats.iterations, loop.run_until_complete(asyncio.sleep(0, "done")))
    finally:
        loop.close()
    factory = multiloop.loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(asyncio.sleep(0))
    try:
        multiloop.new_loop("nope")
    except multiloop.UnknownBackendError as exc:
        print(exc.backend)


# A third-party backend, as hookspecs.py shows it.
class MyPoller(multiloop.Poller):
    name = "mine"

    def __init__(self) -> None:
        self._poll = select.poll()

    def register(self, fd: int, events: int) -> None:
        self._poll.register(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self._poll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self._poll.unregister(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        return self._poll.poll(None if timeout is None else timeout * 1000)

    def close(self) -> None:
        pass


def _probe() -> str | None:
    return None


@multiloop.hookimpl
def multiloop_backends() -> list[multiloop.Backend]:
    return [multiloop.Backend(name="mine", priority=10, capabilities=frozenset({"o1"}),
                              probe=_probe, factory=MyPoller)]


if __name__ == "__main__":
    main()
