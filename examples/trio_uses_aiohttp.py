"""A trio program that uses an asyncio library (aiohttp) through multiloop's trio bridge.

    python examples/trio_uses_aiohttp.py

Needs ``pip install multiloop-asyncio[trio] aiohttp``. The program is trio code: a trio nursery runs three
requests concurrently, and a trio timeout bounds them. aiohttp (asyncio code) serves and fetches on the asyncio
loop that ``multiloop_trio.open_loop()`` runs on this same trio run, in the same thread.
"""

from __future__ import annotations

import aiohttp
import multiloop_trio
import trio
from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=f"hello, {request.match_info['name']}")


async def start_app() -> tuple[web.AppRunner, int]:
    """asyncio code: an aiohttp web app on a free local port."""
    app = web.Application()
    app.router.add_get("/hello/{name}", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


async def fetch(session: aiohttp.ClientSession, url: str) -> str:
    """asyncio code: one GET."""
    async with session.get(url) as response:
        response.raise_for_status()
        return await response.text()


async def main() -> None:
    async with multiloop_trio.open_loop():
        runner, port = await multiloop_trio.aio_as_trio(start_app)()
        session = await multiloop_trio.aio_as_trio(_session)()
        results: dict[str, str] = {}

        async def get(name: str) -> None:  # trio code calling asyncio code
            results[name] = await multiloop_trio.aio_as_trio(fetch)(session, f"http://127.0.0.1:{port}/hello/{name}")

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for name in ("alice", "bob", "carol"):
                    nursery.start_soon(get, name)
        for name in sorted(results):
            print(results[name])
        await multiloop_trio.aio_as_trio(session.close)()
        await multiloop_trio.aio_as_trio(runner.cleanup)()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()  # created inside the asyncio loop, as aiohttp requires


if __name__ == "__main__":
    trio.run(main)
