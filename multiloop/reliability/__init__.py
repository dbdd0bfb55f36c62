"""The reliability suite: scenarios that load the loop, break its peers, exhaust its descriptors and feed its
API garbage, each checking what the loop promises and measuring figures on the way.

Every scenario is a module here with ``SIZES`` (``"ci"``: seconds, for the test suite on every backend;
``"soak"``: bigger, for ``python -m multiloop soak``) and ``async def main(ctx)``; see
:mod:`multiloop.reliability.harness` for what a run measures and checks for every scenario, and
``docs/reliability.md`` for the promises and the figures measured.

    from multiloop.reliability import run_scenario
    result = run_scenario("load", "epoll")          # Result(figures={...}, failures=[...])
"""

from .harness import SCENARIOS, SIZES, Result, run_scenario

__all__ = ["SCENARIOS", "SIZES", "Result", "run_scenario"]
