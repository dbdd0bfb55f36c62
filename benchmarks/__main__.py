"""``python -m benchmarks ARGS`` is ``python -m multiloop bench ARGS``."""

import sys

from multiloop.bench.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m benchmarks"))
