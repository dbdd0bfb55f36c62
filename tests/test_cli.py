"""``python -m multiloop info``: the table, the JSON, and what it says when nothing fits."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MULTILOOP_")}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "multiloop", *args], capture_output=True, text=True,
                          env=environ, timeout=60)


def test_info_table_lists_backends_capabilities_and_the_pick():
    out = cli("info")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = lines[1].split()
    assert header[:3] == ["backend", "available", "priority"]
    assert {"o1", "unlimited_fds", "regular_files", "edge_triggered", "fork_safe"} <= set(header)
    rows = {line.split()[0]: line for line in lines[2:] if line and not line.startswith("new_loop")}
    assert rows["epoll"].split()[1] == "yes"
    assert "built-in" in rows["select"]
    assert lines[-1] == "new_loop() picks: epoll"


def test_info_json_is_machine_readable():
    doc = json.loads(cli("info", "--json").stdout)
    names = {b["name"]: b for b in doc["backends"]}
    assert doc["default"] == "epoll"
    assert names["poll"]["available"] is True and "fork_safe" in names["poll"]["capabilities"]
    assert set(names) >= {"select", "poll", "epoll", "kqueue"}


def test_info_honours_environment_and_requirements():
    assert cli("info", MULTILOOP_BACKEND="select").stdout.splitlines()[-1].startswith("new_loop() picks: select")
    assert cli("info", "--require", "fork_safe", "--avoid", "poll").stdout.splitlines()[-1] == \
        "new_loop() picks: select"


def test_info_explains_when_nothing_fits():
    out = cli("info", "--require", "o1", "--require", "regular_files")
    assert out.returncode == 1
    assert "new_loop() fails: no multiloop backend fits" in out.stdout


def test_info_rejects_unknown_capability():
    out = cli("info", "--require", "warp")
    assert out.returncode == 2 and "unknown capabilities" in out.stderr
