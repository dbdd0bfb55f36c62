"""CPython's ``test.test_asyncio`` against a multiloop backend: the runner, its scope table and exclusions.

Shipped inside the package (not in ``tests/``) so ``python -m multiloop check-backend`` works from an
installed copy; ``tests/conformance`` is the pytest wrapper around the same runner.
"""
