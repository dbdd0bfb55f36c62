"""``python -m multiloop check-backend NAME``: the backend author's kit (see :mod:`multiloop.kit.cli`).

Runs multiloop's behavioural checks and CPython's test_asyncio against an installed backend (or one loaded
with ``--plugin``), prints a verdict naming what failed, and exits non-zero on failure.
"""

from __future__ import annotations

import argparse

NAME = "check-backend"
HELP = "check a backend: multiloop's behavioural suite and CPython's test_asyncio (the backend author's kit)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..kit import cli

    cli.add_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from ..kit import cli

    return cli.main(args)
