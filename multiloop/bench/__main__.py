"""``python -m multiloop.bench`` is ``python -m multiloop bench``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m multiloop.bench"))
