"""pytest plugin (auto-loaded via the ``pytest11`` entry point): run a test suite on multiloop backends.

Placeholder; see the README for the options once they land."""
