"""An ordinary asyncio program: it knows nothing about multiloop.

    python examples/plain_asyncio_app.py                          # stock asyncio
    python -m multiloop run examples/plain_asyncio_app.py         # the same program on multiloop
    python -m multiloop run --backend poll --stats examples/plain_asyncio_app.py

It runs a subprocess, a timer and a TCP round trip on one loop and says which loop that was.
"""

import asyncio
import sys


async def main() -> None:
    loop = asyncio.get_running_loop()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "print('child ok')",
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()

    async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"pong " + await reader.readline())
        writer.close()

    server = await asyncio.start_server(pong, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    writer.write(b"ping\n")
    reply = await reader.readline()
    writer.close()
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0.01)
    print(f"loop: {type(loop).__module__}.{type(loop).__name__} ({getattr(loop, 'backend', 'stock asyncio')})")
    print(f"subprocess: {out.decode().strip()}; tcp: {reply.decode().strip()}")


if __name__ == "__main__":
    asyncio.run(main())
