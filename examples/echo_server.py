"""An echo server on asyncio streams, run on multiloop.

    python examples/echo_server.py [--backend NAME] [--port N]

Prints ``serving on HOST:PORT`` once it listens (port 0, the default, picks a free one) and serves until
Ctrl-C or SIGTERM, then closes every connection and exits 0. Try it with ``examples/echo_client.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import multiloop


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
    except ConnectionError:
        pass  # the client went away mid-line
    finally:
        writer.close()


async def serve(host: str, port: int) -> None:
    server = await asyncio.start_server(handle, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    address = server.sockets[0].getsockname()
    print(f"serving on {address[0]}:{address[1]} ({loop.backend} backend)", flush=True)
    async with server:  # on exit: stop listening, then wait for the connections to end
        await stop.wait()
        server.close_clients()  # multiloop's Server has 3.13's close_clients() on every Python
    print("stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="multiloop backend (default: the best one here)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    multiloop.run(serve(args.host, args.port), backend=args.backend)


if __name__ == "__main__":
    main()
