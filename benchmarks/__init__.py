"""``python -m benchmarks``: kept as an alias of ``python -m multiloop bench`` (the suite ships in
:mod:`multiloop.bench`, so it runs from an installed copy too)."""
