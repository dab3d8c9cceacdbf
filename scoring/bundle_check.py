"""``python -m scoring.bundle_check OUT``: load a model in a throw-away process and score with it.

LightGBM parses a model file in C++, and a damaged file (truncated, a flipped bit) can make it
abort or crash the whole process instead of raising. :func:`scoring.bundle.load_bundle` therefore
runs this module first, in a child process, on the exact bytes it has verified: if LightGBM
aborts here, only this child dies and the server keeps what it serves.

Input on stdin: JSON ``{"model": <model.txt text>, "rows": [[float | null, ...], ...]}``.
Output in the file ``OUT``: JSON ``{"features": [...], "raw": [...]}`` (the booster's feature names
and its raw predictions of the rows, NaN written as ``NaN``); exit status 0. Not on stdout,
because LightGBM writes its own messages there. Any Python error is one line on stderr and exit
status 2; a crash is the signal that killed the process.

Only the standard library, NumPy and LightGBM (without its scikit-learn and pandas
integrations: :mod:`scoring.lgbm`) are imported, so the child starts quickly.
"""

from __future__ import annotations

import json
import sys
from typing import cast

EXIT_ERROR = 2


def check(request: dict[str, object]) -> dict[str, object]:
    import numpy as np

    from scoring.lgbm import lgb

    booster = lgb.Booster(model_str=str(request["model"]))
    rows = cast(list[list[float | None]], request.get("rows") or [])
    matrix = np.array(
        [[np.nan if v is None else float(v) for v in row] for row in rows], dtype=np.float64
    )
    raw = (
        np.asarray(booster.predict(matrix, num_threads=1), dtype=np.float64).tolist()
        if len(matrix)
        else []
    )
    return {"features": list(booster.feature_name()), "raw": raw}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m scoring.bundle_check OUT < request.json", file=sys.stderr)
        return EXIT_ERROR
    try:
        request = json.loads(sys.stdin.read())
        result = check(request)
    except Exception as error:  # reported to the parent, which raises ModelError
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{type(error).__name__}: {message}", file=sys.stderr)
        return EXIT_ERROR
    with open(argv[0], "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
