"""CBPE parity: our label-free estimates against NannyML 0.13.1's on the same rows.

NannyML is no dependency of this project (it pins plotly < 6 and pulls LightGBM, FLAML,
XGBoost and kaleido): it runs in its own venv outside the checkout
(``~/.cache/eval-pipelines/nannyml-0.13.1``, or ``$EVAL_PIPELINES_NANNYML_VENV``), built by
the first run of this file when missing (about 4 minutes and 2 GB, once; NannyML 0.13.1
supports Python 3.9-3.12 and pandas >= 1.4, and imports statsmodels without declaring it).
``tests/support/nannyml_cbpe.py`` is what runs there.

Each binary case is its own model version in one warehouse: four labeled reference weeks,
then the evaluated week. We run the pipeline; NannyML's ``CBPE`` is fitted on the same
labeled reference rows and estimates the evaluated week as one chunk. The tolerances are
documented in docs/estimation.md; what they absorb is the calibration on 1000 score bins
instead of rows (measured separately here against a row-level isotonic fit).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from support.data import write_warehouse
from support.estimation_data import Week, cbpe_weeks

from eval_pipelines.estimation.multiclass import estimate_multiclass
from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

NANNYML = "0.13.1"
VENV = Path(
    os.environ.get(
        "EVAL_PIPELINES_NANNYML_VENV",
        Path.home() / ".cache" / "eval-pipelines" / f"nannyml-{NANNYML}",
    )
)
RUNNER = Path(__file__).parent / "support" / "nannyml_cbpe.py"
REFERENCE = ["2026-10-19", "2026-10-26", "2026-11-02", "2026-11-09"]
WEEK = "2026-11-16"
METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]
# |ours - NannyML| at most this per metric (docs/estimation.md, "Agreement with NannyML").
# Measured: at most 6e-4 (the 600-row case's ROC AUC), 0 where scores sit on bin edges.
TOLERANCE = dict.fromkeys(["accuracy", "precision", "recall", "f1", "roc_auc"], 0.002)
# case -> (rows per reference week, rows in the evaluated week, shift of the evaluated week)
CASES = {
    "stable": (4000, 4000, -1.0),
    "shifted": (4000, 4000, 0.0),
    "small": (600, 600, -1.0),
    "ties": (4000, 4000, -0.5),
}


# --------------------------------------------------------------------------------------
# NannyML's venv
# --------------------------------------------------------------------------------------


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _works() -> bool:
    if not _venv_python().exists():
        return False
    probe = "import nannyml, pyarrow; assert nannyml.__version__ == '" + NANNYML + "'"
    return subprocess.run([_venv_python(), "-c", probe], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def nannyml_python() -> Path:
    """NannyML 0.13.1's interpreter, building its venv when missing."""
    if _works():
        return _venv_python()
    VENV.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [
            str(_venv_python()),
            "-m",
            "pip",
            "install",
            "--quiet",
            f"nannyml=={NANNYML}",
            "pandas<3",
            "pyarrow",
            "statsmodels",
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(
                f"could not build NannyML {NANNYML}'s venv at {VENV} (needed for the CBPE "
                f"parity test; set EVAL_PIPELINES_NANNYML_VENV to use another path): "
                f"{' '.join(step)} exited {done.returncode}: {done.stderr[-2000:]}"
            )
    if not _works():
        pytest.fail(f"NannyML {NANNYML}'s venv at {VENV} was built but does not import")
    return _venv_python()


# --------------------------------------------------------------------------------------
# data and both estimates
# --------------------------------------------------------------------------------------


def _cases(seed: int = 20261202) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    logs, labels = [], []
    for case, (reference_rows, rows, shift) in CASES.items():
        weeks = [Week(start, reference_rows) for start in REFERENCE] + [
            Week(WEEK, rows, True, shift)
        ]
        case_logs, case_labels, _ = cbpe_weeks(rng, weeks)
        case_logs["model_version"] = case
        if case == "ties":
            case_logs["score"] = case_logs["score"].round(2)
        for frame in (case_logs, case_labels):
            frame["prediction_id"] = case + "-" + frame["prediction_id"]
        logs.append(case_logs)
        labels.append(case_labels)
    return pd.concat(logs, ignore_index=True), pd.concat(labels, ignore_index=True)


def _nannyml_rows(logs: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The rows NannyML sees: labeled reference weeks, and the evaluated week."""
    rows = logs.merge(labels[["prediction_id", "label"]], on="prediction_id", how="left")
    week = rows["ts"] >= pd.Timestamp(WEEK)
    reference = rows[~week & rows["label"].notna()].assign(period="reference")
    analysis = rows[week].assign(period="analysis")
    out = pd.concat([reference, analysis], ignore_index=True)
    return pd.DataFrame(
        {
            "case": out["model_version"],
            "kind": "binary",
            "period": out["period"],
            "y_true": out["label"].fillna(0).astype(int),
            "y_pred_proba": out["score"],
            "y_pred": (out["score"] >= 0.5).astype(int),
        }
    )


@pytest.fixture(scope="module")
def results(nannyml_python, tmp_path_factory):
    """Per binary case: our estimates, NannyML's, and a row-level isotonic CBPE."""
    folder = tmp_path_factory.mktemp("cbpe_parity")
    logs, labels = _cases()
    url = write_warehouse(folder / "w.duckdb", logs, labels)
    spec = parse_spec(
        {
            "model": "cbpe_parity",
            "warehouse": url,
            "predictions": {"table": "inference_logs"},
            "labels": {"table": "labels", "max_delay": "14d"},
            "metrics": METRICS,
            "min_slice_size": 50,
            "confidence": {"replicates": 200, "seed": 3},
            "estimation": {"reference_weeks": 4},
            "validation": {"row_count_weeks": 0},
        }
    )
    metrics = evaluate(spec, WEEK).metrics
    ours = {
        case: {
            name: float(
                metrics[
                    (metrics["model_version"] == case)
                    & (metrics["slice"] == "overall")
                    & (metrics["metric"] == f"estimated_{name}")
                ]["value"].iloc[0]
            )
            for name in METRICS
        }
        for case in CASES
    }
    rows = _nannyml_rows(logs, labels)
    rows.to_parquet(folder / "rows.parquet")
    done = subprocess.run(
        [nannyml_python, RUNNER, folder / "rows.parquet", folder / "out.json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads((folder / "out.json").read_text())
    return ours, theirs, rows, metrics


def _row_level_cbpe(rows: pd.DataFrame) -> dict[str, float]:
    """CBPE on rows with scikit-learn's isotonic fit (always calibrating): the estimate our
    histogram calibration approximates."""
    reference = rows[rows["period"] == "reference"]
    analysis = rows[rows["period"] == "analysis"]
    fit = IsotonicRegression(out_of_bounds="clip").fit(
        reference["y_pred_proba"], reference["y_true"]
    )
    p = fit.predict(analysis["y_pred_proba"])
    pred = analysis["y_pred"].to_numpy()
    tp, fp = p[pred == 1].sum(), (1 - p[pred == 1]).sum()
    fn, tn = p[pred == 0].sum(), (1 - p[pred == 0]).sum()
    n = len(p)
    scores = analysis["y_pred_proba"].to_numpy()
    auc = roc_auc_score(
        np.r_[np.ones(n), np.zeros(n)], np.r_[scores, scores], sample_weight=np.r_[p, 1 - p]
    )
    return {
        "accuracy": (tp + tn) / n,
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "roc_auc": auc,
    }


# --------------------------------------------------------------------------------------
# binary
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_binary_estimates_agree_with_nannyml(results, case):
    ours, theirs, _, _ = results
    assert theirs[case]["needs_calibration"], "the scores are miscalibrated: both calibrate"
    for name in METRICS:
        gap = abs(ours[case][name] - theirs[case][name])
        assert gap <= TOLERANCE[name], (case, name, ours[case][name], theirs[case][name])


@pytest.mark.parametrize("case", list(CASES))
def test_histogram_calibration_is_close_to_row_level_isotonic(results, case):
    ours, _, rows, _ = results
    row_level = _row_level_cbpe(rows[rows["case"] == case])
    for name in METRICS:
        assert abs(ours[case][name] - row_level[name]) <= TOLERANCE[name], (case, name)


def test_interval_widths_are_of_the_order_of_nannyml_sampling_error(results):
    """Both describe the sampling error of the evaluated week with the calibration fixed:
    our 95% interval's half-width is about 1.96 of NannyML's sampling errors."""
    _, theirs, _, metrics = results
    for case in CASES:
        for name in METRICS:
            row = metrics[
                (metrics["model_version"] == case)
                & (metrics["slice"] == "overall")
                & (metrics["metric"] == f"estimated_{name}")
            ].iloc[0]
            ratio = (
                (row["ci_high"] - row["ci_low"]) / 2 / 1.96 / theirs[case][f"{name}_sampling_error"]
            )
            assert 0.4 < ratio < 2.5, (case, name, ratio)


# --------------------------------------------------------------------------------------
# multiclass (pure numpy, ready for the multiclass task)
# --------------------------------------------------------------------------------------


def _multiclass_rows(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    """Three classes; the model's probabilities are an under-confident softmax (miscalibrated)."""
    logits = rng.normal(0.0, 1.5, (n, 3)) + np.array([shift, 0.0, -shift])
    true_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in true_p])
    shown = np.exp(0.5 * logits) / np.exp(0.5 * logits).sum(1, keepdims=True)
    return pd.DataFrame(
        {
            "y_true": np.array(list("abc"))[y],
            "y_pred": np.array(list("abc"))[shown.argmax(1)],
            **{f"proba_{c}": shown[:, i] for i, c in enumerate("abc")},
        }
    )


def test_multiclass_estimates_agree_with_nannyml(nannyml_python, tmp_path):
    rng = np.random.default_rng(7)
    cases = {"mc_stable": 0.0, "mc_shifted": 0.8}
    frames = []
    for case, shift in cases.items():
        frames.append(_multiclass_rows(rng, 8000, 0.0).assign(case=case, period="reference"))
        frames.append(_multiclass_rows(rng, 4000, shift).assign(case=case, period="analysis"))
    rows = pd.concat(frames, ignore_index=True).assign(kind="multiclass")
    rows.to_parquet(tmp_path / "rows.parquet")
    done = subprocess.run(
        [nannyml_python, RUNNER, tmp_path / "rows.parquet", tmp_path / "out.json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads((tmp_path / "out.json").read_text())
    index = {c: i for i, c in enumerate("abc")}
    for case in cases:
        part = rows[rows["case"] == case]
        reference, analysis = (
            part[part["period"] == "reference"],
            part[part["period"] == "analysis"],
        )
        columns = [f"proba_{c}" for c in "abc"]
        ours = estimate_multiclass(
            reference[columns].to_numpy(),
            reference["y_true"].map(index).to_numpy(),
            analysis[columns].to_numpy(),
            analysis["y_pred"].map(index).to_numpy(),
        )
        assert abs(ours["accuracy"] - theirs[case]["accuracy"]) <= 0.002, case
        assert abs(ours["macro_f1"] - theirs[case]["f1"]) <= 0.002, case


# --------------------------------------------------------------------------------------
# multiclass through the warehouse (sql/estimation_multiclass.sql)
# --------------------------------------------------------------------------------------
# |ours - NannyML| at most this (docs/estimation.md, "Agreement with NannyML"): what it absorbs
# is the calibration on bins and the normalisation per predicted class instead of per row.
MULTICLASS_TOLERANCE = 0.005


def _multiclass_warehouse(path: Path, shift: float) -> tuple[str, pd.DataFrame]:
    """Four labeled reference weeks of 2000 rows and an unlabeled evaluated week of 3000, in a
    DuckDB; returns its URL and every row (``period`` reference/analysis, ``y_true`` of all)."""
    rng = np.random.default_rng(11)
    frames = []
    for start in [*REFERENCE, WEEK]:
        n = 3000 if start == WEEK else 2000
        part = _multiclass_rows(rng, n, shift if start == WEEK else 0.0)
        part["prediction_id"] = [f"{start}-{i}" for i in range(n)]
        part["ts"] = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, 6 * 86400, n), "s")
        part["model_version"] = "v1"
        part["period"] = "analysis" if start == WEEK else "reference"
        frames.append(part)
    rows = pd.concat(frames, ignore_index=True)
    reference = rows[rows["period"] == "reference"]
    labels = pd.DataFrame(
        {
            "prediction_id": reference["prediction_id"],
            "label": reference["y_true"],
            "labeled_at": reference["ts"] + pd.Timedelta(days=1),
        }
    )
    logs = rows[["prediction_id", "ts", "model_version", "y_pred", *PROBA]]
    return write_warehouse(path, logs, labels), rows


PROBA = [f"proba_{c}" for c in "abc"]


def _multiclass_estimates(url: str) -> pd.DataFrame:
    spec = parse_spec(
        {
            "model": "cbpe_multiclass",
            "task": "multiclass_classification",
            "warehouse": url,
            "predictions": {
                "table": "inference_logs",
                "prediction": "y_pred",
                "class_scores": {c: f"proba_{c}" for c in "abc"},
            },
            "labels": {"table": "labels", "max_delay": "14d"},
            "metrics": ["accuracy", "macro_f1"],
            "min_slice_size": 50,
            "confidence": {"replicates": 200, "seed": 3},
            "estimation": {"reference_weeks": 4},
            "validation": {"row_count_weeks": 0},
        }
    )
    metrics = evaluate(spec, WEEK).metrics
    return metrics[metrics["slice"] == "overall"].set_index("metric")


@pytest.mark.parametrize("shift", [0.0, 0.8])
def test_multiclass_warehouse_estimates_agree_with_nannyml(nannyml_python, tmp_path, shift):
    url, rows = _multiclass_warehouse(tmp_path / "w.duckdb", shift)
    ours = _multiclass_estimates(url)
    rows.assign(case="mc", kind="multiclass").to_parquet(tmp_path / "rows.parquet")
    done = subprocess.run(
        [nannyml_python, RUNNER, tmp_path / "rows.parquet", tmp_path / "out.json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads((tmp_path / "out.json").read_text())["mc"]
    assert ours.loc["estimated_accuracy", "status"] == "ok"
    assert ours.loc["estimated_accuracy", "n"] == 3000
    assert np.isnan(ours.loc["accuracy", "value"])  # no label arrived: only the estimate
    for name, nannyml in [("accuracy", "accuracy"), ("macro_f1", "f1")]:
        value = ours.loc[f"estimated_{name}", "value"]
        assert abs(value - theirs[nannyml]) <= MULTICLASS_TOLERANCE, (name, value, theirs)
        assert ours.loc[f"estimated_{name}", "ci_low"] < value
        assert value < ours.loc[f"estimated_{name}", "ci_high"]


@pytest.mark.parametrize("shift", [0.0, 0.8])
def test_multiclass_warehouse_estimates_are_close_to_the_row_level_estimator(tmp_path, shift):
    """The binned, per-predicted-class normalised statistic against the row-level numpy CBPE
    (per-row normalisation) on the same rows; and the estimate's interval against the
    realized metrics of the withheld labels (sklearn)."""
    url, rows = _multiclass_warehouse(tmp_path / "w.duckdb", shift)
    ours = _multiclass_estimates(url)
    index = {c: i for i, c in enumerate("abc")}
    reference, analysis = rows[rows["period"] == "reference"], rows[rows["period"] == "analysis"]
    row_level = estimate_multiclass(
        reference[PROBA].to_numpy(),
        reference["y_true"].map(index).to_numpy(),
        analysis[PROBA].to_numpy(),
        analysis["y_pred"].map(index).to_numpy(),
    )
    realized = {
        "accuracy": accuracy_score(analysis["y_true"], analysis["y_pred"]),
        "macro_f1": f1_score(analysis["y_true"], analysis["y_pred"], average="macro"),
    }
    for name in ["accuracy", "macro_f1"]:
        row = ours.loc[f"estimated_{name}"]
        assert abs(row["value"] - row_level[name]) <= MULTICLASS_TOLERANCE, (name, row_level)
        assert row["ci_low"] <= realized[name] <= row["ci_high"], (name, realized, row)
