"""What a minimum of leukocytes per field buys: the error of the calls kept, against the fields flagged.

Usage: python benchmarks/leukocyte_minimum.py runs/gelu0/eval/predictions.csv runs/gelu1/evalval/predictions.csv ...

Each file is one `leukoscope evaluate` output written without a minimum (`--min-leukocytes 0`, or a
bundle that has none). For each minimum N from 1 to 6, a field is flagged when `evaluate` flagged it
(its confidence or its out-of-distribution check) or when it shows fewer than N leukocytes (the
`cells` column). Printed per file: the share of fields flagged, and the error of the calls kept on
benign vs malignant (what `eval.abstain_on=malignancy` vouches for), with the number of such errors;
and, as the other way to treat such fields, the benign specificity that the ranking by p(Benign)
allows at 99 % malignant sensitivity when every field with fewer than N leukocytes screens positive.
Then the leukocyte counts of the kept errors without a minimum: are the calls that slip past the
abstain threshold those with little to judge?
"""

from __future__ import annotations

import argparse
import csv
import sys

import numpy as np

from leukoscope.scoring.predictions import TOO_FEW
from leukoscope.scoring.screening import specificity_at_sensitivity

BENIGN = "Benign"
MINIMA = range(1, 7)


def read(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(flagged, wrong on benign vs malignant, leukocytes, p(Benign), malignant) of each predicted field."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "ok"]
    if any(TOO_FEW in r.get("abstain_reason", "") for r in rows):
        sys.exit(f"{path}: written with a minimum of leukocytes already; evaluate again with --min-leukocytes 0")
    flagged = np.array([r["abstain"] == "True" for r in rows])
    wrong = np.array([(r["label"] == BENIGN) != (r["true"] == BENIGN) for r in rows])
    p_benign, malignant = np.array([float(r[f"p_{BENIGN}"]) for r in rows]), np.array([r["true"] != BENIGN for r in rows])
    return flagged, wrong, np.array([int(r["cells"] or 0) for r in rows]), p_benign, malignant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("predictions", nargs="+", help="predictions.csv files of `leukoscope evaluate`, written without a minimum")
    args = ap.parse_args()
    for path in args.predictions:
        flagged, wrong, cells, p_benign, malignant = read(path)
        print(f"{path} ({len(cells)} fields)")
        for least in MINIMA:
            kept = ~flagged & (cells >= least)
            error = f"{100 * wrong[kept].mean():.1f} % ({int(wrong[kept].sum())})" if kept.any() else "-"
            referred = specificity_at_sensitivity(np.where(cells < least, -1.0, p_benign), malignant, 0.99)
            print(
                f"  at least {least} leukocyte{'s' if least > 1 else ' '}: flagged {100 * (1 - kept.mean()):5.1f} %, error of the calls kept {error:11s}"
                f" | fewer screened positive: specificity at 99 % sensitivity {100 * referred:.0f} %"
            )
        print(f"  leukocytes of the kept errors without a minimum: {sorted(cells[~flagged & wrong].tolist())}")


if __name__ == "__main__":
    main()
