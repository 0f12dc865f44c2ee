"""Gate semantics: the verdict fails closed, and every reason carries its numbers."""

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.gates import decide
from eval_pipelines.spec import parse_spec

NAN = float("nan")


def spec(gates, **extra):
    raw = {
        "model": "m",
        "warehouse": "duckdb:///:memory:",
        "predictions": {"table": "p"},
        "labels": {"table": "l"},
        "compare": {"baseline": "v1", "candidate": "v2"},
        "gates": gates,
        "min_slice_size": 50,
        "slices": ["country"],  # gates may only name slices and features the spec produces
        "drift": {"features": ["amount", "age"]},
    }
    raw.update(extra)
    return parse_spec(raw)


def metrics(rows):
    base = {
        "ci_low": 0.0,
        "ci_high": 1.0,
        "n": 500,
        "n_positive": 100,
        "status": "ok",
        "error_bound": 0.0,
    }
    columns = ["model_version", "slice", "metric", "value", *base]
    return pd.DataFrame([{**base, **r} for r in rows], columns=columns)


def comparison(rows):
    base = {
        "baseline": 0.5,
        "candidate": 0.5,
        "delta_ci_low": -1,
        "delta_ci_high": 1,
        "p_value": 0.5,
        "test": "t",
        "n": 500,
    }
    frame = pd.DataFrame([{**base, **r} for r in rows])
    return frame


COVERAGE = pd.DataFrame(
    [
        {"model_version": v, "slice": "overall", "rows": 1000, "labeled": 900, "coverage": 0.9}
        for v in ("v1", "v2")
    ]
)
NO_DRIFT = pd.DataFrame(
    columns=["feature", "method", "statistic", "p_value", "n_reference", "n_current"]
)
AUC_OK = metrics([{"model_version": "v2", "slice": "overall", "metric": "roc_auc", "value": 0.9}])


def test_ship_when_every_gate_passes():
    verdict = decide(
        spec([{"metric": "roc_auc", "slice": "overall", "min": 0.8}]),
        AUC_OK,
        None,
        NO_DRIFT,
        COVERAGE,
    )
    assert verdict.decision == "ship"
    assert "0.9000 is within bounds" in verdict.reasons[-1].message


def test_absolute_bound_violation_holds_with_numbers():
    verdict = decide(
        spec([{"metric": "roc_auc", "slice": "overall", "min": 0.95}]),
        AUC_OK,
        None,
        NO_DRIFT,
        COVERAGE,
    )
    assert verdict.decision == "hold"
    assert (
        "roc_auc on overall of v2 = 0.9000 is below the minimum 0.95" in verdict.blocking[0].message
    )


@pytest.mark.parametrize(
    "frame",
    [
        metrics([]),  # metric missing altogether
        metrics(
            [{"model_version": "v2", "slice": "overall", "metric": "roc_auc", "value": 0.9, "n": 0}]
        ),
        metrics([{"model_version": "v2", "slice": "overall", "metric": "roc_auc", "value": NAN}]),
    ],
)
def test_missing_or_empty_or_undefined_metric_holds(frame):
    verdict = decide(
        spec([{"metric": "roc_auc", "slice": "overall", "min": 0.8}]),
        frame,
        None,
        NO_DRIFT,
        COVERAGE,
    )
    assert verdict.decision == "hold"


def test_configured_slice_without_data_holds():
    gates = [{"metric": "roc_auc", "slice": "country=ZZ", "min": 0.8}]
    verdict = decide(spec(gates), AUC_OK, None, NO_DRIFT, COVERAGE)
    assert verdict.decision == "hold"
    assert "country=ZZ" in verdict.blocking[0].message


def test_low_label_coverage_is_inconclusive():
    coverage = COVERAGE.assign(labeled=100)
    verdict = decide(
        spec([{"metric": "roc_auc", "slice": "overall", "min": 0.8}]),
        AUC_OK,
        None,
        NO_DRIFT,
        coverage,
    )
    assert verdict.decision == "inconclusive"
    assert "10.0%" in verdict.blocking[0].message


def test_no_gates_is_inconclusive():
    assert decide(spec([]), AUC_OK, None, NO_DRIFT, COVERAGE).decision == "inconclusive"


@pytest.mark.parametrize(
    ("delta", "q", "decision"),
    [
        (-0.10, 0.001, "hold"),  # significant and beyond the tolerance
        (-0.10, 0.20, "ship"),  # large but not significant: not a hold on noise
        (-0.01, 0.001, "ship"),  # significant but within the tolerance
        (+0.10, 0.001, "ship"),  # an improvement
    ],
)
def test_regression_gate_is_significance_aware(delta, q, decision):
    frame = comparison(
        [
            {
                "slice": "device=android",
                "metric": "recall",
                "delta": delta,
                "q_value": q,
                "outcome": "x",
            }
        ]
    )
    verdict = decide(
        spec([{"metric": "recall", "max_regression": 0.02}]), AUC_OK, frame, NO_DRIFT, COVERAGE
    )
    assert verdict.decision == decision
    if decision == "hold":
        assert (
            "recall on device=android regressed significantly by 0.1000"
            in verdict.blocking[0].message
        )


def test_regression_on_lower_is_better_metric():
    frame = comparison(
        [
            {
                "slice": "overall",
                "metric": "log_loss",
                "delta": +0.2,
                "q_value": 0.001,
                "outcome": "x",
            }
        ]
    )
    verdict = decide(
        spec([{"metric": "log_loss", "max_regression": 0.05}]), AUC_OK, frame, NO_DRIFT, COVERAGE
    )
    assert verdict.decision == "hold"


def test_drift_gates():
    drift = pd.DataFrame(
        [
            {
                "feature": "amount",
                "method": "psi",
                "statistic": 0.4,
                "p_value": NAN,
                "n_reference": 10,
                "n_current": 5,
            },
            {
                "feature": "age",
                "method": "psi",
                "statistic": 0.01,
                "p_value": NAN,
                "n_reference": 10,
                "n_current": 5,
            },
            {
                "feature": "age",
                "method": "ks",
                "statistic": 0.3,
                "p_value": 0.001,
                "n_reference": 10,
                "n_current": 5,
            },
        ]
    )
    held = decide(spec([{"drift": "psi", "max": 0.25}]), AUC_OK, None, drift, COVERAGE)
    assert held.decision == "hold"
    assert [r.feature for r in held.blocking] == ["amount"]
    assert (
        decide(
            spec([{"drift": "psi", "feature": "age", "max": 0.25}]), AUC_OK, None, drift, COVERAGE
        ).decision
        == "ship"
    )
    assert (
        decide(spec([{"drift": "ks", "min_p_value": 0.01}]), AUC_OK, None, drift, COVERAGE).decision
        == "hold"
    )
    missing = decide(spec([{"drift": "wasserstein", "max": 0.1}]), AUC_OK, None, drift, COVERAGE)
    assert missing.decision == "hold"
    assert "no wasserstein drift result" in missing.blocking[0].message


def test_gate_on_a_metric_that_is_not_computed_is_a_spec_error():
    from eval_pipelines.errors import SpecError

    with pytest.raises(SpecError, match=r"gates\.0\.metric: 'recall' is not in metrics"):
        spec([{"metric": "recall", "min": 0.5}], metrics=["roc_auc"])


def test_regression_gate_without_compare_holds():
    raw_spec = spec([{"metric": "recall", "max_regression": 0.02}], compare=None)
    verdict = decide(raw_spec, AUC_OK.assign(model_version="v2"), None, NO_DRIFT, COVERAGE)
    assert verdict.decision == "hold"
    assert np.any(["needs a 'compare'" in r.message for r in verdict.blocking])
