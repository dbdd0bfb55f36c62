"""The echo server's client: sends each argument as a line and prints what comes back.

    python examples/echo_client.py PORT [words...] [--host HOST] [--backend NAME]
"""

from __future__ import annotations

import argparse
import asyncio

import multiloop


async def talk(host: str, port: int, words: list[str]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    for word in words:
        writer.write(word.encode() + b"\n")
        await writer.drain()
        echoed = await reader.readline()
        print(f"sent {word!r}, got back {echoed.decode().rstrip()!r}")
    writer.close()
    await writer.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("words", nargs="*", default=["hello", "multiloop"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--backend", default=None)
    args = parser.parse_args()
    multiloop.run(talk(args.host, args.port, args.words), backend=args.backend)


if __name__ == "__main__":
    main()
