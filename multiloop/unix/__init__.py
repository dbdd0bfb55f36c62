"""Unix-specific loop features, one module per concern; UnixMixin composes them."""

from __future__ import annotations

from .pipes import PipesMixin
from .signals import SignalsMixin
from .subprocess import SubprocessMixin


class UnixMixin(SubprocessMixin, SignalsMixin, PipesMixin):
    """Pipes, signals and subprocesses."""
