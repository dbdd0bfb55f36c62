"""``python -m multiloop run``: a drop-in for ``python script.py`` / ``python -m module`` whose asyncio loops are
multiloop loops. Programs are real files run in a subprocess; exit statuses and output are what is checked."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

import multiloop
from multiloop.cli import run as run_command
from multiloop.cli.default_loop import multiloop_as_default

PACKAGE_DIR = os.path.dirname(os.path.abspath(multiloop.__file__))

PROBE = textwrap.dedent('''
    import asyncio, json, sys
    import sibling  # a module next to the script: sys.path[0] is the script's directory

    async def main():
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__, asyncio.get_running_loop().backend

    report = {"argv": sys.argv, "path0": sys.path[0], "name": __name__, "sibling": sibling.VALUE,
              "run": asyncio.run(main())}
    with asyncio.Runner() as runner:
        report["runner"] = runner.get_loop().backend
        report["current_in_runner"] = asyncio.get_event_loop() is runner.get_loop()
    loop = asyncio.new_event_loop()
    report["new_event_loop"] = loop.backend
    loop.close()
    print(json.dumps(report))
''')


def launch(*args: str, cwd=None, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MULTILOOP_")}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "multiloop", "run", *args], capture_output=True, text=True,
                          env=environ, cwd=cwd, timeout=60)


def write(path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def probe_script(tmp_path):
    (tmp_path / "sibling.py").write_text("VALUE = 42\n")
    return write(tmp_path / "probe.py", PROBE)


def test_a_script_runs_like_python_runs_it_on_the_chosen_backend(probe_script, tmp_path, backend):
    import json

    out = launch("--backend", backend, probe_script, "one", "--two")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["argv"] == [probe_script, "one", "--two"]
    assert report["path0"] == os.path.realpath(tmp_path)
    assert report["name"] == "__main__" and report["sibling"] == 42
    assert report["run"] == ["multiloop.loop", backend]
    assert report["runner"] == report["new_event_loop"] == backend
    assert report["current_in_runner"] is True  # a Runner without a factory still sets the current loop
    assert out.stderr == ""


def test_without_backend_option_the_environment_and_automatic_choice_apply(probe_script):
    import json

    assert json.loads(launch(probe_script).stdout)["run"][1] == multiloop.default_backend()
    assert json.loads(launch(probe_script, MULTILOOP_BACKEND="select").stdout)["run"][1] == "select"


def test_a_module_runs_like_python_dash_m(tmp_path):
    import json

    pkg = tmp_path / "app"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg / "__main__.py", """
        import asyncio, json, sys
        async def main():
            return asyncio.get_running_loop().backend
        print(json.dumps({"argv": sys.argv, "path0": sys.path[0], "name": __name__,
                          "backend": asyncio.run(main())}))
    """)
    out = launch("--backend", "poll", "-m", "app", "x", "-m", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report == {"argv": [str(pkg / "__main__.py"), "x", "-m"], "path0": str(tmp_path),
                      "name": "__main__", "backend": "poll"}


def test_a_directory_with_main_runs_with_itself_on_sys_path(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    write(app / "__main__.py", "import sys; print(sys.path[0])\n")
    out = launch(str(app))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(app)


@pytest.mark.parametrize(("code", "status", "stderr"), [
    ("import sys; sys.exit(3)", 3, ""),
    ("import sys; sys.exit('fatal: no config')", 1, "fatal: no config\n"),
    ("raise SystemExit", 0, ""),
])
def test_exit_statuses_are_the_programs(tmp_path, code, status, stderr):
    out = launch(write(tmp_path / "exit.py", code))
    assert (out.returncode, out.stderr) == (status, stderr)


def test_an_uncaught_exception_prints_the_programs_traceback_and_exits_1(tmp_path):
    script = write(tmp_path / "fails.py", """
        import asyncio

        async def inner():
            raise ValueError("boom")

        async def main():
            await inner()

        asyncio.run(main())
    """)
    out = launch(script)
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1] == f'  File "{script}", line 10, in <module>'
    assert lines[-1] == "ValueError: boom"
    assert f'File "{script}", line 8, in main' in out.stderr and f'File "{script}", line 5, in inner' in out.stderr
    assert PACKAGE_DIR not in out.stderr and "runpy" not in out.stderr


def test_chained_exceptions_are_trimmed_too(tmp_path):
    script = write(tmp_path / "chained.py", """
        try:
            {}["missing"]
        except KeyError as exc:
            raise RuntimeError("lookup failed") from exc
    """)
    out = launch(script)
    assert out.returncode == 1
    assert "KeyError: 'missing'" in out.stderr and out.stderr.rstrip().endswith("RuntimeError: lookup failed")
    assert PACKAGE_DIR not in out.stderr and "runpy" not in out.stderr


def test_keyboard_interrupt_exits_130_with_its_traceback(tmp_path):
    script = write(tmp_path / "interrupted.py", """
        import asyncio

        async def main():
            raise KeyboardInterrupt

        asyncio.run(main())
    """)
    out = launch(script)
    assert out.returncode == 130
    assert out.stderr.rstrip().endswith("KeyboardInterrupt") and PACKAGE_DIR not in out.stderr


def test_a_syntax_error_is_reported_without_launcher_frames(tmp_path):
    out = launch(write(tmp_path / "broken.py", "def (\n"))
    assert out.returncode == 1
    assert "SyntaxError" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(("args", "env", "status", "message"), [
    (["--backend", "nope", "x.py"], {}, 2, "unknown multiloop backend 'nope' (--backend)"),
    (["x.py"], {"MULTILOOP_BACKEND": "nope"}, 2, "unknown multiloop backend 'nope' ($MULTILOOP_BACKEND)"),
    (["missing.py"], {}, 2, "can't open file"),
    (["-m", "no_such_module_here"], {}, 1, "No module named no_such_module_here"),
    (["-m", "nomain"], {}, 1, "'nomain' is a package and cannot be directly executed"),
    (["--frob", "x.py"], {}, 2, "unknown option '--frob'"),
    ([], {}, 2, "no script or -m module given"),
    (["--backend"], {}, 2, "--backend needs a backend name"),
])
def test_bad_input_is_one_line_and_a_failure_status(tmp_path, args, env, status, message):
    (tmp_path / "x.py").write_text("print('should not run')\n")
    (tmp_path / "nomain").mkdir()
    (tmp_path / "nomain" / "__init__.py").write_text("")
    out = launch(*args, cwd=tmp_path, **env)
    assert out.returncode == status
    assert out.stdout == ""
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert out.stderr.startswith("python -m multiloop run: error: ") and message in out.stderr


def test_stats_prints_a_summary_of_every_loop_at_exit(tmp_path):
    script = write(tmp_path / "busy.py", """
        import asyncio

        async def main():
            for _ in range(10):
                await asyncio.sleep(0)

        asyncio.run(main())
        asyncio.run(main())
        print("done")
    """)
    out = launch("--stats", "--backend", "select", script)
    assert out.returncode == 0 and out.stdout == "done\n"
    lines = out.stderr.splitlines()
    assert lines[0] == "multiloop stats: 2 loops"
    assert lines[1] == "loop 1 (select, closed):"
    iterations = next(line for line in lines if line.startswith("  iterations")).split()[-1]
    assert int(iterations.replace(",", "")) >= 10
    assert "loop 2 (select, closed):" in lines


def test_stats_are_printed_even_when_the_program_fails(tmp_path):
    out = launch("--stats", write(tmp_path / "fail.py", "import asyncio\nasyncio.run(asyncio.sleep(0))\n1/0\n"))
    assert out.returncode == 1
    assert "ZeroDivisionError" in out.stderr and "multiloop stats: 1 loop" in out.stderr


def test_a_loop_factory_the_program_passes_itself_is_respected():
    if sys.version_info < (3, 12):
        pytest.skip("asyncio.run(loop_factory=) is 3.12+")

    async def kind():
        return type(asyncio.get_running_loop()).__module__

    with multiloop_as_default(multiloop.loop_factory("poll")):
        assert asyncio.run(kind()) == "multiloop.loop"
        assert asyncio.run(kind(), loop_factory=asyncio.SelectorEventLoop) == "asyncio.unix_events"


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="get_event_loop() creates no loop from 3.14 on")
def test_old_get_event_loop_programs_get_a_multiloop_loop_before_314(tmp_path):
    script = write(tmp_path / "legacy.py", """
        import asyncio, warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        loop = asyncio.get_event_loop()
        print(loop.run_until_complete(asyncio.sleep(0, loop.backend)))
    """)
    out = launch("--backend", "poll", script)
    assert (out.returncode, out.stdout) == (0, "poll\n"), out.stderr


def test_asyncio_is_restored_after_the_program(tmp_path, capsys):
    """In-process: the launcher leaves asyncio, sys.argv and sys.path as it found them."""
    before = (asyncio.new_event_loop, asyncio.events.new_event_loop, list(sys.argv), list(sys.path))
    script = write(tmp_path / "quiet.py", "import asyncio\nasyncio.run(asyncio.sleep(0))\n")
    assert run_command.main(["--backend", "poll", script]) == 0
    assert (asyncio.new_event_loop, asyncio.events.new_event_loop, sys.argv, sys.path) == before
    loop = asyncio.new_event_loop()
    try:
        assert not type(loop).__module__.startswith("multiloop")
    finally:
        loop.close()


def test_the_asyncio_facts_the_patch_relies_on():
    """Fails loudly if a Python release stops creating a factory-less Runner's loop via events.new_event_loop."""
    made = []

    def factory():
        made.append(multiloop.new_loop("poll"))
        return made[-1]

    async def current():
        return asyncio.get_running_loop()

    with multiloop_as_default(factory):
        assert asyncio.run(current()) is made[0]
        with asyncio.Runner() as runner:
            assert runner.get_loop() is made[1]
        loop = asyncio.new_event_loop()
        assert loop is made[2]
        loop.close()
    assert len(made) == 3


def test_stats_enable_timings_and_name_the_slowest_callback(tmp_path):
    script = write(tmp_path / "slow.py", """
        import asyncio, time

        def stall():
            end = time.monotonic() + 0.15
            while time.monotonic() < end:
                pass

        async def main():
            asyncio.get_running_loop().call_soon(stall)
            await asyncio.sleep(0.01)

        asyncio.run(main())
    """)
    out = launch("--stats", "--backend", "poll", script)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    start = lines.index("  timings:")
    summary = lines[start + 1:]
    assert summary[0].lstrip().startswith("time: ") and "waiting for I/O" in summary[0]
    assert summary[1].lstrip().startswith("loop lag ")
    assert summary[2].lstrip() == "slow callbacks (at least slow_callback_duration): 1"
    assert summary[3].split()[2:] == ["stall", f"{script}:4"]  # line 1 of the file is empty
