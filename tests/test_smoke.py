import asyncio


def test_loop_runs_a_coroutine_on_its_backend(loop, run, backend):
    async def main():
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    assert run(main()) is loop
    assert loop.backend == backend
