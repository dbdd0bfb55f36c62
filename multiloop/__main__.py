"""``python -m multiloop``: see :mod:`multiloop.cli` (one module per subcommand)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
