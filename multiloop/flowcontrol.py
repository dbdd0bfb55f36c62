"""Write-buffer water marks, shared by every transport (stream, datagram, pipe): one rule, asyncio's."""

from __future__ import annotations


def water_marks(high: int | None, low: int | None) -> tuple[int, int]:
    """(high, low) with asyncio's defaults (64 KiB; low = high / 4; high = 4 * low), or ValueError."""
    if high is None:
        high = 64 * 1024 if low is None else 4 * low
    if low is None:
        low = high // 4
    if not high >= low >= 0:
        raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
    return high, low
