"""Every program in ``examples/`` runs (with a timeout) and prints what its docstring promises.

The example test suites in ``examples/testing`` are run by ``test_pytest_plugin.py``; the backend plugin example
``examples/backend-plugin`` by its own test.
"""

from __future__ import annotations

import importlib.util
import os
import re
import selectors
import signal
import socket
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
TRIO_README = os.path.join(ROOT, "plugins", "multiloop-trio", "README.md")
TIMEOUT = 30


def example(name: str) -> str:
    return os.path.join(EXAMPLES, name)


def needs(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")


def run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTILOOP_")}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=TIMEOUT, env=env)


class Server:
    """An example server in a subprocess: waits for its first line, stops it with SIGTERM."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.first_line = self.readline()

    def readline(self) -> str:
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(TIMEOUT):
                self.proc.kill()
                raise AssertionError(f"no output within {TIMEOUT} s")
        return self.proc.stdout.readline()

    def port(self) -> int:
        m = re.search(r"on 127\.0\.0\.1:(\d+) \((\w+) backend\)", self.first_line)
        assert m, self.first_line
        return int(m.group(1))

    def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=TIMEOUT)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def servers():
    started: list[Server] = []

    def start(*args: str) -> Server:
        started.append(Server(*args))
        return started[-1]

    yield start
    for server in started:
        server.kill()


def test_echo_server_and_client(servers, backend):
    server = servers(example("echo_server.py"), "--backend", backend)
    assert server.first_line.endswith(f"({backend} backend)\n")
    client = run(example("echo_client.py"), str(server.port()), "one", "two words", "--backend", backend)
    assert client.returncode == 0, client.stderr
    assert client.stdout.splitlines() == ["sent 'one', got back 'one'", "sent 'two words', got back 'two words'"]
    assert server.stop() == (0, "stopped\n", "")


def _line(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data.decode().rstrip("\n")


def test_chat_server_relays_lines_between_clients(servers, backend):
    server = servers(example("chat_server.py"), "--backend", backend)
    port = server.port()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as ann, \
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as bob:
        assert _line(ann) == "name?"
        ann.sendall(b"ann\n")
        assert _line(ann) == "welcome ann, 0 other(s) here"
        assert _line(bob) == "name?"
        bob.sendall(b"bob\n")
        assert _line(bob) == "welcome bob, 1 other(s) here"
        assert _line(ann) == "* bob joined"
        ann.sendall(b"hi bob\n")
        assert _line(bob) == "ann: hi bob"
        bob.sendall(b"hi ann\n")
        assert _line(ann) == "bob: hi ann"
        bob.close()
        assert _line(ann) == "* bob left"
        status = server.stop()
        assert _line(ann) == "* server shutting down"
    assert status == (0, "stopped\n", "")


def test_trio_program_using_aiohttp():
    needs("trio", "aiohttp", "multiloop_trio")
    out = run(example("trio_uses_aiohttp.py"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["hello, alice", "hello, bob", "hello, carol"]


def test_plain_asyncio_program_runs_on_stock_asyncio():
    out = run(example("plain_asyncio_app.py"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].endswith("(stock asyncio)")
    assert out.stdout.splitlines()[1] == "subprocess: child ok; tcp: pong ping"


def test_plain_asyncio_program_under_multiloop_run(backend):
    out = run("-m", "multiloop", "run", "--backend", backend, "--stats", example("plain_asyncio_app.py"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"loop: multiloop.loop.EventLoop ({backend})",
                                       "subprocess: child ok; tcp: pong ping"]
    assert out.stderr.startswith(f"multiloop stats: 1 loop\nloop 1 ({backend}, closed):\n")


def test_instruments_example_tracks_tasks_and_names_the_blocking_callback(backend):
    out = run(example("instruments.py"), "--backend", backend)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    steps = {line.split(":")[0]: line.rsplit(", ", 1)[1] for line in lines if line.startswith("task ")}
    # worker-n sleeps n times: its first step, one per wake-up; main's first step, then the end of the group
    assert steps == {"task worker-1": "2 steps", "task worker-3": "4 steps", "task worker-5": "6 steps",
                     "task Task-1": "2 steps"}
    assert "slow callbacks (at least slow_callback_duration): 1" in lines
    with open(example("instruments.py")) as source:
        line = next(n for n, text in enumerate(source, 1) if text.startswith("def block_the_loop"))
    assert lines[-1].split()[2:] == ["block_the_loop", f"{example('instruments.py')}:{line}"]


def test_trio_plugin_readme_example_runs_as_written():
    needs("trio", "multiloop_trio")
    with open(TRIO_README, encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    assert len(blocks) == 1
    out = run("-c", blocks[0])
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["trio", "HELLO FROM TRIO", "trio", "42"]  # the README's comments
