"""Third-party backends arrive through the entry-point group ``multiloop``.

These tests build a real wheel (a throwaway distribution with four plugins: one good backend, one that fails to
import, one whose hook raises, one whose probe says no), install it with pip into a private directory, and look
at it from a fresh interpreter with that directory on sys.path. Nothing in importlib.metadata is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import pytest

DIST = "multiloop_testplugins"
VERSION = "1.0"

GOOD = '''
import select
import multiloop

class ThirdPartyPoller(multiloop.Poller):
    """A backend the core has never heard of: poll(2) behind a plugin's own class."""
    name = "thirdparty"

    def __init__(self):
        self._p = select.poll()

    def register(self, fd, events):
        self._p.register(fd, events)

    def modify(self, fd, events):
        self._p.modify(fd, events)

    def unregister(self, fd):
        self._p.unregister(fd)

    def poll(self, timeout):
        return self._p.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999)))

    def close(self):
        pass

@multiloop.hookimpl
def multiloop_backends():
    return [multiloop.Backend(name="thirdparty", priority=5, capabilities=frozenset({"unlimited_fds"}),
                              probe=lambda: None, factory=ThirdPartyPoller, description="test plugin")]
'''

RAISING = '''
import multiloop

@multiloop.hookimpl
def multiloop_backends():
    raise RuntimeError("this plugin is broken on purpose")
'''

NOKERNEL = '''
import multiloop
from multiloop.pollers.poll import PollPoller

@multiloop.hookimpl
def multiloop_backends():
    return [multiloop.Backend(name="quantum", priority=1000, capabilities=frozenset({"o1"}),
                              probe=lambda: "needs a quantum kernel", factory=PollPoller)]
'''

ENTRY_POINTS = {
    "good": f"{DIST}.good",
    "missing": f"{DIST}.does_not_exist",
    "raising": f"{DIST}.raising",
    "nokernel": f"{DIST}.nokernel",
}


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(directory) -> str:
    files = {
        f"{DIST}/__init__.py": b"",
        f"{DIST}/good.py": GOOD.encode(),
        f"{DIST}/raising.py": RAISING.encode(),
        f"{DIST}/nokernel.py": NOKERNEL.encode(),
    }
    info = f"{DIST}-{VERSION}.dist-info"
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {VERSION}\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: multiloop-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/entry_points.txt"] = ("[multiloop]\n" + "".join(
        f"{k} = {v}\n" for k, v in ENTRY_POINTS.items())).encode()
    record = [_record_line(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = os.path.join(directory, f"{DIST}-{VERSION}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    work = tmp_path_factory.mktemp("plugins")
    wheel = build_wheel(str(work))
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--target", str(target), wheel], check=True)
    return str(target)


def run_with_plugins(plugin_dir: str, code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([plugin_dir, os.environ.get("PYTHONPATH", "")]))
    env.pop("MULTILOOP_BACKEND", None)
    return subprocess.run([sys.executable, *(["-c", code] if code else []), *args], env=env,
                          capture_output=True, text=True, timeout=60)


REPORT = textwrap.dedent('''
    import json, multiloop
    print(json.dumps({r.name: {"available": r.available, "reason": r.reason, "origin": r.origin}
                      for r in multiloop.backends()}))
''')


def test_entry_point_backends_are_listed_with_their_distribution(plugin_dir):
    out = run_with_plugins(plugin_dir, REPORT)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows["thirdparty"] == {"available": True, "reason": None, "origin": f"{DIST} {VERSION}"}
    assert rows["quantum"]["available"] is False and rows["quantum"]["reason"] == "needs a quantum kernel"


def test_broken_plugins_are_reported_by_name_with_their_error(plugin_dir):
    rows = json.loads(run_with_plugins(plugin_dir, REPORT).stdout)
    assert rows["missing"]["available"] is False
    assert "import failed: ModuleNotFoundError" in rows["missing"]["reason"]
    assert rows["raising"]["available"] is False
    assert "this plugin is broken on purpose" in rows["raising"]["reason"]


def test_a_plugin_backend_runs_a_loop_like_a_builtin(plugin_dir):
    code = textwrap.dedent('''
        import asyncio, socket, multiloop
        async def main():
            loop = asyncio.get_running_loop()
            a, b = socket.socketpair()
            got = loop.create_future()
            loop.add_reader(a, lambda: got.done() or got.set_result(a.recv(10)))
            b.send(b"via plugin")
            data = await got
            loop.remove_reader(a); a.close(); b.close()
            await asyncio.sleep(0.01)
            return loop.backend, data
        print(multiloop.run(main(), backend="thirdparty"))
    ''')
    out = run_with_plugins(plugin_dir, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "('thirdparty', b'via plugin')"


def test_broken_plugins_do_not_stop_automatic_choice(plugin_dir):
    code = "import multiloop; lp = multiloop.new_loop(); print(lp.backend); lp.close()"
    out = run_with_plugins(plugin_dir, code)
    assert out.returncode == 0, out.stderr
    # 'quantum' has the highest priority but its probe fails; 'thirdparty' ranks below epoll.
    assert out.stdout.strip() == "epoll"


def test_cli_info_shows_plugins_and_broken_ones(plugin_dir):
    out = run_with_plugins(plugin_dir, "", "-m", "multiloop", "info")
    assert out.returncode == 0, out.stderr
    assert f"{DIST} {VERSION}" in out.stdout
    for name in ("thirdparty", "quantum", "missing", "raising"):
        assert name in out.stdout
    assert "new_loop() picks: epoll" in out.stdout
