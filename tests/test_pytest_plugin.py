"""The bundled pytest plugin, exercised the way users meet it: real pytest runs (in a subprocess) on small suites.

A pytest-asyncio suite and an anyio suite from ``examples/testing`` run unchanged on every selected backend;
smaller inline suites pin down ids, loop scopes, skips, markers and start-up errors.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

import multiloop

pytest_plugins = ["pytester"]

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "testing")
LINUX_BACKENDS = ["epoll", "poll", "select"]
HERE = [b for b in LINUX_BACKENDS if b in {r.name for r in multiloop.backends() if r.available}]


def _pytest_asyncio() -> None:
    pytest.importorskip("pytest_asyncio", minversion="1.4", reason="needs pytest-asyncio >= 1.4")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """The inner runs must not inherit this run's backend choice (tox sets these)."""
    for name in ("MULTILOOP_TEST_BACKENDS", "MULTILOOP_BACKEND", "MULTILOOP_AVOID"):
        monkeypatch.delenv(name, raising=False)


def outcomes(result) -> dict[str, str]:
    """test id -> PASSED/FAILED/SKIPPED/ERROR, from ``-v`` (or ``-rA``) output."""
    found = {}
    for line in result.outlines:
        m = re.match(r"^(\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL)", line)
        if m:
            found[m.group(1).split("::", 1)[1]] = m.group(2)
    return found


def copy_example(pytester, name: str) -> None:
    for entry in os.listdir(os.path.join(EXAMPLES, name)):
        src = os.path.join(EXAMPLES, name, entry)
        if os.path.isfile(src):
            shutil.copy(src, pytester.path / entry)


ASYNCIO_INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
"""


# -- pytest-asyncio --------------------------------------------------------------------------------------------
def test_existing_pytest_asyncio_suite_runs_once_per_backend(pytester):
    _pytest_asyncio()
    copy_example(pytester, "pytest_asyncio_suite")
    result = pytester.runpytest_subprocess("-v", "-W", "error", "-p", "no:randomly",
                                           f"--multiloop-backends={','.join(HERE)}")
    got = outcomes(result)
    async_tests = ["test_echo_upper_cases_a_line", "test_two_clients_are_served_concurrently",
                   "test_timeouts_cancel_slow_work", "test_subprocess_output"]
    expected = {f"{t}[{b}]": "PASSED" for t in async_tests for b in HERE}
    expected["test_plain_function_runs_once"] = "PASSED"
    assert got == expected, result.stdout.str()
    assert result.ret == 0


def test_without_a_selection_pytest_asyncio_keeps_stock_asyncio(pytester):
    _pytest_asyncio()
    pytester.makeini(ASYNCIO_INI)
    pytester.makepyfile(test_stock="""
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_loop_is_stock():
            assert not type(asyncio.get_running_loop()).__module__.startswith("multiloop")
    """)
    result = pytester.runpytest_subprocess("-v", "-W", "error")
    assert outcomes(result) == {"test_loop_is_stock": "PASSED"}, result.stdout.str()


BACKEND_CHECK = """
    import asyncio, pytest

    @pytest.mark.asyncio
    async def test_runs_on_the_backend_in_its_id(request):
        loop = asyncio.get_running_loop()
        assert type(loop).__module__.startswith("multiloop")
        assert loop.backend == request.node.callspec.id
"""


@pytest.mark.parametrize("how", ["option", "environment", "ini"])
def test_backends_are_selected_by_option_environment_or_ini(pytester, monkeypatch, how):
    _pytest_asyncio()
    names = ",".join(HERE[:2])
    args = ["-v", "-W", "error"]
    ini = ASYNCIO_INI
    if how == "option":
        args.append(f"--multiloop-backends={names}")
    elif how == "environment":
        monkeypatch.setenv("MULTILOOP_TEST_BACKENDS", names)
    else:
        ini += f"multiloop_backends = {names}\n"
    pytester.makeini(ini)
    pytester.makepyfile(test_backend=BACKEND_CHECK)
    result = pytester.runpytest_subprocess(*args)
    assert outcomes(result) == {f"test_runs_on_the_backend_in_its_id[{b}]": "PASSED" for b in HERE[:2]}, \
        result.stdout.str()


def test_all_and_auto(pytester):
    _pytest_asyncio()
    pytester.makeini(ASYNCIO_INI)
    pytester.makepyfile(test_backend=BACKEND_CHECK)
    available = [r.name for r in multiloop.backends() if r.available]
    result = pytester.runpytest_subprocess("-v", "-W", "error", "--multiloop-backends=all")
    assert outcomes(result) == {f"test_runs_on_the_backend_in_its_id[{b}]": "PASSED" for b in available}
    # 'auto' adds the automatic choice; a name given twice runs once.
    result = pytester.runpytest_subprocess("-v", "-W", "error", "--multiloop-backends=auto,select,select")
    ids = set(outcomes(result))
    auto = multiloop.default_backend()
    assert ids == {f"test_runs_on_the_backend_in_its_id[{b}]" for b in {auto, "select"}}


@pytest.mark.parametrize("scope", ["module", "session"])
def test_wider_loop_scopes_keep_one_loop_per_backend(pytester, scope):
    _pytest_asyncio()
    pytester.makeini(ASYNCIO_INI)
    pytester.makeconftest("""
        LOOPS = {}
    """)
    test = f"""
        import asyncio, pytest
        import conftest

        @pytest.mark.asyncio(loop_scope="{scope}")
        async def test_first(request):
            conftest.LOOPS.setdefault(request.node.callspec.id, set()).add(id(asyncio.get_running_loop()))

        @pytest.mark.asyncio(loop_scope="{scope}")
        async def test_second(request):
            conftest.LOOPS.setdefault(request.node.callspec.id, set()).add(id(asyncio.get_running_loop()))
    """
    pytester.makepyfile(test_a=test, test_b=test)
    pytester.makepyfile(test_z_check=f"""
        import conftest

        def test_loops_were_shared():
            # per backend: one loop per module ("module" scope) or one for the whole session
            expected = {2 if scope == "module" else 1}
            assert sorted(conftest.LOOPS) == {sorted(HERE)!r}
            assert all(len(loops) == expected for loops in conftest.LOOPS.values()), conftest.LOOPS
    """)
    result = pytester.runpytest_subprocess("-v", "-W", "error", "-p", "no:randomly",
                                           f"--multiloop-backends={','.join(HERE)}")
    got = outcomes(result)
    assert got.pop("test_loops_were_shared") == "PASSED", result.stdout.str()
    assert got == {f"test_{n}[{b}]": "PASSED" for n in ("first", "second") for b in HERE}


def test_unknown_names_are_one_usage_error_at_start_up(pytester):
    _pytest_asyncio()
    pytester.makeini(ASYNCIO_INI)
    pytester.makepyfile(test_backend=BACKEND_CHECK)
    result = pytester.runpytest_subprocess("--multiloop-backends=epoll,nope,bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if "nope" in line]
    assert len(errors) == 1, result.errlines
    assert "unknown multiloop backends 'nope', 'bogus'" in errors[0] and "known: " in errors[0]
    assert "Traceback" not in result.stderr.str()
    assert "passed" not in result.stdout.str()


def test_unavailable_backends_are_skipped_with_the_probe_reason(pytester):
    _pytest_asyncio()
    missing = [r for r in multiloop.backends() if not r.available]
    if not missing:
        pytest.skip("every backend can run here")
    gone = missing[0]
    pytester.makeini(ASYNCIO_INI)
    pytester.makepyfile(test_backend=BACKEND_CHECK)
    result = pytester.runpytest_subprocess("-v", "-rs", "-W", "error", f"--multiloop-backends=poll,{gone.name}")
    assert outcomes(result) == {"test_runs_on_the_backend_in_its_id[poll]": "PASSED",
                                f"test_runs_on_the_backend_in_its_id[{gone.name}]": "SKIPPED"}
    assert gone.reason in result.stdout.str()


def test_marker_pins_and_skips_backends(pytester):
    _pytest_asyncio()
    pytester.makeini(ASYNCIO_INI)
    pytester.makepyfile(test_marked="""
        import asyncio, pytest

        @pytest.mark.multiloop(backends=["poll"])
        @pytest.mark.asyncio
        async def test_pinned():
            assert asyncio.get_running_loop().backend == "poll"

        @pytest.mark.multiloop(skip={"select": "select cannot watch fd 5000"})
        @pytest.mark.asyncio
        async def test_skips_select():
            assert asyncio.get_running_loop().backend != "select"

        @pytest.mark.asyncio
        async def test_unmarked():
            pass
    """)
    result = pytester.runpytest_subprocess("-v", "-rs", "-W", "error", "--multiloop-backends=epoll,select")
    assert outcomes(result) == {
        "test_pinned": "PASSED",  # pytest-asyncio leaves the id out when there is only one loop factory
        "test_skips_select[epoll]": "PASSED", "test_skips_select[select]": "SKIPPED",
        "test_unmarked[epoll]": "PASSED", "test_unmarked[select]": "PASSED"}, result.stdout.str()
    assert "skipped for this test by mark.multiloop: select cannot watch fd 5000" in result.stdout.str()


def test_marker_with_an_unknown_backend_fails_collection_clearly(pytester):
    _pytest_asyncio()
    pytester.makeini(ASYNCIO_INI)
    pytester.makepyfile(test_marked="""
        import pytest

        @pytest.mark.multiloop(backends=["epol"])
        @pytest.mark.asyncio
        async def test_typo():
            pass
    """)
    result = pytester.runpytest_subprocess("--multiloop-backends=epoll")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*test_typo: mark.multiloop names unknown backend(s) 'epol'; known: *"])


# -- anyio -----------------------------------------------------------------------------------------------------
def test_existing_anyio_suite_runs_once_per_backend(pytester):
    pytest.importorskip("anyio")
    copy_example(pytester, "anyio_suite")
    result = pytester.runpytest_subprocess("-v", "-W", "error", "-p", "no:asyncio", "-p", "no:randomly",
                                           f"--multiloop-backends={','.join(HERE)}")
    tests = ["test_tcp_echo_through_anyio_streams", "test_memory_object_streams_and_task_groups",
             "test_move_on_after"]
    expected = {f"{t}[{b}]": "PASSED" for t in tests for b in HERE}
    expected["test_plain_function_runs_once"] = "PASSED"
    assert outcomes(result) == expected, result.stdout.str()


def test_anyio_tests_run_on_the_backend_in_their_id_and_conftest_overrides_win(pytester):
    pytest.importorskip("anyio")
    pytester.makepyfile(test_anyio="""
        import asyncio, pytest

        @pytest.mark.anyio
        async def test_backend(request, anyio_backend):
            loop = asyncio.get_running_loop()
            if anyio_backend == "asyncio":  # the conftest's own fixture: stock asyncio
                assert not type(loop).__module__.startswith("multiloop")
            else:
                assert anyio_backend[0] == "asyncio"
                assert loop.backend == request.node.callspec.id
    """)
    result = pytester.runpytest_subprocess("-v", "-W", "error", "-p", "no:asyncio", "--multiloop-backends=poll,select")
    assert outcomes(result) == {"test_backend[poll]": "PASSED", "test_backend[select]": "PASSED"}, \
        result.stdout.str()
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(scope="module")
        def anyio_backend():
            return "asyncio"
    """)
    result = pytester.runpytest_subprocess("-v", "-W", "error", "-p", "no:asyncio", "--multiloop-backends=poll")
    assert outcomes(result) == {"test_backend": "PASSED"}, result.stdout.str()


# -- the fixtures ----------------------------------------------------------------------------------------------
def test_fixtures_are_parametrized_over_the_selection_or_the_automatic_choice(pytester):
    pytester.makepyfile(test_fixtures="""
        import asyncio

        def test_loop(multiloop_loop, multiloop_backend):
            assert multiloop_loop.backend == multiloop_backend
            assert multiloop_loop.run_until_complete(asyncio.sleep(0, "done")) == "done"

        def test_factory(multiloop_loop_factory, multiloop_backend):
            with asyncio.Runner(loop_factory=multiloop_loop_factory) as runner:
                assert runner.get_loop().backend == multiloop_backend

        def test_sync():
            pass
    """)
    result = pytester.runpytest_subprocess("-v", "-W", "error", "-p", "no:asyncio", "--multiloop-backends=poll,select")
    assert outcomes(result) == {"test_loop[poll]": "PASSED", "test_loop[select]": "PASSED",
                                "test_factory[poll]": "PASSED", "test_factory[select]": "PASSED",
                                "test_sync": "PASSED"}, result.stdout.str()
    result = pytester.runpytest_subprocess("-v", "-W", "error", "-p", "no:asyncio")
    auto = multiloop.default_backend()
    assert outcomes(result) == {f"test_loop[{auto}]": "PASSED", f"test_factory[{auto}]": "PASSED",
                                "test_sync": "PASSED"}


def test_the_header_names_the_selection(pytester):
    pytester.makepyfile(test_nothing="def test_nothing(): pass")
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "--multiloop-backends=poll")
    result.stdout.fnmatch_lines(["multiloop backends (--multiloop-backends): poll"])
