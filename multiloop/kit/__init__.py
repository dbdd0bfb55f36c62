"""The backend author's kit: check that a backend really behaves as multiloop's core needs.

Filled in below: the conformance runner (``conformance/``), which runs the interpreter's own CPython
``test.test_asyncio`` against any installed backend.
"""
