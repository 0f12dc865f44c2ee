"""NannyML 0.13.1's CBPE estimates on the rows of a parity test; runs in NannyML's own venv.

Usage: ``python nannyml_cbpe.py ROWS.parquet OUT.json``. ``ROWS`` holds ``case``, ``period``
(``reference`` / ``analysis``) and, for binary cases (``kind = "binary"``), ``y_true``,
``y_pred_proba`` and ``y_pred``; for multiclass cases (``kind = "multiclass"``), ``y_true``,
``y_pred`` and one ``proba_<class>`` column per class. For every case this fits ``nml.CBPE``
on the reference rows (isotonic calibration, NannyML's default) and estimates the analysis
rows as one chunk. Writes per case: each metric's estimate and sampling error, and whether
NannyML decided the scores need calibration.

This file imports NannyML, so it is never imported by the test suite itself.
"""

import json
import sys
import warnings

import nannyml as nml
import pandas as pd

BINARY = ["roc_auc", "f1", "precision", "recall", "accuracy"]
MULTICLASS = ["f1", "accuracy"]


def main(rows_path: str, out_path: str) -> None:
    warnings.filterwarnings("ignore")
    nml.disable_usage_logging()
    rows = pd.read_parquet(rows_path)
    out = {}
    for case, part in rows.groupby("case", sort=True):
        kind = part["kind"].iloc[0]
        reference = part[part["period"] == "reference"].reset_index(drop=True)
        analysis = part[part["period"] == "analysis"].reset_index(drop=True)
        if kind == "binary":
            metrics = BINARY
            estimator = nml.CBPE(
                y_pred_proba="y_pred_proba",
                y_pred="y_pred",
                y_true="y_true",
                problem_type="classification_binary",
                metrics=metrics,
                chunk_number=1,
            )
        else:
            classes = sorted(c[len("proba_") :] for c in part.columns if c.startswith("proba_"))
            classes = [c for c in classes if part[f"proba_{c}"].notna().all()]
            reference = reference.astype({"y_true": str, "y_pred": str})
            analysis = analysis.astype({"y_true": str, "y_pred": str})
            metrics = MULTICLASS
            estimator = nml.CBPE(
                y_pred_proba={c: f"proba_{c}" for c in classes},
                y_pred="y_pred",
                y_true="y_true",
                problem_type="classification_multiclass",
                metrics=metrics,
                chunk_number=1,
            )
        estimator.fit(reference)
        frame = estimator.estimate(analysis.drop(columns=["y_true"])).to_df()
        record = {}
        for metric in metrics:
            record[metric] = float(frame[(metric, "value")].iloc[-1])
            record[f"{metric}_sampling_error"] = float(frame[(metric, "sampling_error")].iloc[-1])
        if kind == "binary":
            record["needs_calibration"] = bool(estimator.needs_calibration)
        out[str(case)] = record
    with open(out_path, "w") as handle:
        json.dump(out, handle, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
