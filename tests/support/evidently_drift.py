"""Evidently 0.7's drift decisions on the rows of a parity test; runs in Evidently's own venv.

Usage: ``python evidently_drift.py ROWS.parquet FEATURES.json OUT.json``. ``ROWS`` holds the
columns ``case``, ``period`` (``reference`` / ``current``) and one column per feature;
``FEATURES`` maps each feature to ``"num"`` or ``"cat"``. For every case and feature this does
what Evidently's column drift does (``legacy/calculations/data_drift.py``: infinities to NaN,
NaN dropped, then the stat test) for each stat test that allows the feature's type, and for
the default test Evidently picks (``registry._get_default_stattest``), at Evidently's default
thresholds. Writes one record per (case, feature, test): the drift score and decision.

This file imports Evidently, so it is never imported by the test suite itself.
"""

import json
import sys

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests import (
    chi_stat_test,
    jensenshannon_stat_test,
    ks_stat_test,
    psi_stat_test,
    wasserstein_stat_test,
    z_stat_test,
)
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType

TESTS = [
    ks_stat_test,
    wasserstein_stat_test,
    psi_stat_test,
    jensenshannon_stat_test,
    chi_stat_test,
    z_stat_test,
]


def main(rows_path: str, features_path: str, out_path: str) -> None:
    rows = pd.read_parquet(rows_path)
    with open(features_path) as handle:
        features = json.load(handle)
    out = []
    for case, part in rows.groupby("case", sort=True):
        for feature, kind in features.items():
            column_type = ColumnType.Numerical if kind == "num" else ColumnType.Categorical
            windows = {}
            for period in ("reference", "current"):
                values = part.loc[part["period"] == period, feature]
                if kind == "num":
                    values = values.astype(float)
                windows[period] = values.replace([-np.inf, np.inf], np.nan).dropna()
            ref, cur = windows["reference"], windows["current"]
            default = get_stattest(ref, cur, column_type, None)
            for test in TESTS:
                allowed = column_type in test.allowed_feature_types
                if not allowed and test is not default:
                    continue
                result = test(ref, cur, column_type, None)
                out.append(
                    {
                        "case": case,
                        "feature": feature,
                        "method": test.name,
                        "score": float(result.drift_score),
                        "drifted": bool(result.drifted),
                        "threshold": float(result.actual_threshold),
                        "default": test is default,
                    }
                )
    with open(out_path, "w") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main(*sys.argv[1:4])
