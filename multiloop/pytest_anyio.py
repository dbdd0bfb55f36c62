"""The ``anyio_backend`` override that :mod:`multiloop.pytest_plugin` registers when backends are selected.

A module of its own because pytest collects plugin fixtures from the registered object, and a module-scoped
fixture must be a plain function (pytest deprecates instance-method fixtures of wider scope). Registered after
anyio's plugin, it replaces anyio's default ``anyio_backend``; a ``conftest.py`` that defines its own
``anyio_backend`` still wins.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="module")
def anyio_backend(multiloop_anyio_backend: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """asyncio on the multiloop backend of this run: ``("asyncio", {"loop_factory": ...})``."""
    return multiloop_anyio_backend
