"""Worker: ``python -m multiloop.reliability SCENARIO BACKEND SIZE SEED`` runs one scenario in this process
and prints its :class:`~multiloop.reliability.harness.Result` as one JSON line (the last line of stdout).

The soak runner and isolated scenarios (fd limits, fork) use it; ``python -m multiloop soak`` is the command
for people."""

import json
import sys

from .harness import load_scenario, run_in_process


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    name, backend, size, seed = argv
    result = run_in_process(load_scenario(name), backend, size, int(seed))
    sys.stdout.write("\n" + json.dumps(result.to_json(), default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
