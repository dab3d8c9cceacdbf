"""``python -m scoring.first_pass_child KEEP``: the odd chunks of a bulk run's first pass.

:func:`scoring.first_pass.first_pass` with two processes starts this module. It reads the
request the parent wrote to ``KEEP/request.pickle`` (the stream without its inspections, the
watchlist), reads the stream's chunks itself, and for each odd one writes its declarations and
stage one (``features.kept``) and its keys (a pickle) to ``KEEP``, one chunk in memory at a
time. Exit status 0 when every file is written; an error of Centinela's is pickled to
``KEEP/error.pickle`` for the parent to raise, and any error is one line on stderr, exit
status 2.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

EXIT_ERROR = 2


def run(keep: Path) -> None:
    from features.errors import CentinelaError
    from scoring.first_pass import ERROR_FILE, REQUEST_FILE, chunk_keys, keyed_file

    with (keep / REQUEST_FILE).open("rb") as saved:
        request = pickle.load(saved)
    try:
        for index, keyed in chunk_keys(
            request["stream"], request["watchlist"], keep, step=2, first=1
        ):
            with keyed_file(keep, index).open("wb") as out:
                pickle.dump(keyed, out, protocol=pickle.HIGHEST_PROTOCOL)
    except CentinelaError as error:
        with (keep / ERROR_FILE).open("wb") as out:
            pickle.dump(error, out)
        raise


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m scoring.first_pass_child KEEP", file=sys.stderr)
        return EXIT_ERROR
    try:
        run(Path(argv[0]))
    except Exception as error:  # one line for the parent to show
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
