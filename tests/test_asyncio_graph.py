"""Python 3.14's task introspection works for tasks on a multiloop loop: ``asyncio.capture_call_graph`` /
``format_call_graph`` in the process, and ``python -m asyncio ps|pstree <pid>`` from outside (it reads the
interpreter's per-thread task list through the remote debugging interface, so it must find ours)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 14), reason="asyncio.graph and 'asyncio ps' are 3.14+")


def test_capture_call_graph_follows_awaiting_tasks(loop, run):
    async def main():
        leaf_ready = asyncio.Event()
        graphs = {}

        async def leaf():
            leaf_ready.set()
            await asyncio.sleep(3600)

        async def middle():
            await loop.create_task(leaf(), name="leaf")

        outer = loop.create_task(middle(), name="middle")
        await leaf_ready.wait()
        leaf_task = next(t for t in asyncio.all_tasks(loop) if t.get_name() == "leaf")
        graph = asyncio.capture_call_graph(leaf_task)
        graphs["awaited_by"] = [edge.future.get_name() for edge in graph.awaited_by]
        graphs["frames"] = [f.frame.f_code.co_name for f in graph.call_stack]
        graphs["text"] = asyncio.format_call_graph(leaf_task)
        graphs["current"] = asyncio.format_call_graph()  # the running task (main) itself
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        return graphs

    graphs = run(main())
    assert graphs["awaited_by"] == ["middle"]
    assert "leaf" in graphs["frames"]
    assert "Task(name='leaf'" in graphs["text"] and "Task(name='middle'" in graphs["text"]
    assert "main" in graphs["current"]


CHILD = textwrap.dedent("""\
    import asyncio, sys, multiloop

    async def leaf():
        await asyncio.sleep(3600)

    async def worker():
        await asyncio.gather(leaf(), leaf())

    async def main():
        task = asyncio.create_task(worker(), name="ml-worker")
        await asyncio.sleep(0)
        print(asyncio.get_running_loop().backend, flush=True)
        await task

    multiloop.run(main(), backend=sys.argv[1])
""")


@pytest.mark.parametrize("command", ["ps", "pstree"])
def test_asyncio_ps_of_another_process_lists_its_multiloop_tasks(backend, command):
    child = subprocess.Popen([sys.executable, "-c", CHILD, backend], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == backend  # the loop runs, the tasks exist
        proc = subprocess.run([sys.executable, "-m", "asyncio", command, str(child.pid)],
                              capture_output=True, text=True, timeout=60)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    if proc.returncode != 0 and ("ermission" in proc.stderr or "not permitted" in proc.stderr):
        pytest.skip(f"this machine does not let one process read another's memory: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ml-worker" in out and "leaf" in out and "main" in out
    if command == "ps":
        # one row (starting with the thread id) per task: main's, the worker, the two leaves it gathers
        rows = [line for line in out.splitlines() if line.split() and line.split()[0].isdigit()]
        assert len(rows) == 4, out
        assert len([r for r in rows if "sleep -> leaf" in r and "ml-worker" in r]) == 2, out
    else:
        assert out.count("leaf") >= 2


def test_asyncio_ps_reports_nothing_for_a_process_without_a_running_loop():
    # The negative control: the same tool on a process that runs no loop lists no task.
    child = subprocess.Popen([sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "up"
        proc = subprocess.run([sys.executable, "-m", "asyncio", "ps", str(child.pid)], capture_output=True,
                              text=True, timeout=60, env={**os.environ})
    finally:
        child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()
    if proc.returncode != 0 and ("ermission" in proc.stderr or "not permitted" in proc.stderr):
        pytest.skip("cannot read another process's memory here")
    assert "leaf" not in proc.stdout
