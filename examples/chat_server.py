"""A line-based chat server on asyncio streams, run on multiloop.

    python examples/chat_server.py [--backend NAME] [--port N]

Each client first sends its name, then lines of text; every line is sent to all the other clients as
``name: text``, and arrivals and departures are announced. Prints ``chat on HOST:PORT`` once listening and
serves until Ctrl-C or SIGTERM. Try it with two terminals running ``nc 127.0.0.1 PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import multiloop


class Room:
    def __init__(self) -> None:
        self.members: dict[asyncio.StreamWriter, str] = {}
        self.handlers: set[asyncio.Task[None]] = set()

    def broadcast(self, text: str, sender: asyncio.StreamWriter | None = None) -> None:
        for writer in self.members:
            if writer is not sender and not writer.is_closing():
                writer.write(text.encode() + b"\n")

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        task.add_done_callback(self.handlers.discard)
        writer.write(b"name?\n")
        name = (await reader.readline()).decode().strip() or "anonymous"
        self.members[writer] = name
        self.broadcast(f"* {name} joined", sender=writer)
        writer.write(f"welcome {name}, {len(self.members) - 1} other(s) here\n".encode())
        try:
            while line := await reader.readline():
                self.broadcast(f"{name}: {line.decode().rstrip()}", sender=writer)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            del self.members[writer]
            self.broadcast(f"* {name} left")
            writer.close()


async def serve(host: str, port: int) -> None:
    room = Room()
    server = await asyncio.start_server(room.handle, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"chat on {host}:{port} ({loop.backend} backend)", flush=True)
    async with server:
        await stop.wait()
        room.broadcast("* server shutting down")
        server.close_clients()
        # Let every handler see its client go (on Python 3.11, leaving "async with" does not wait for them).
        await asyncio.gather(*room.handlers, return_exceptions=True)
    print("stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    multiloop.run(serve(args.host, args.port), backend=args.backend)


if __name__ == "__main__":
    main()
