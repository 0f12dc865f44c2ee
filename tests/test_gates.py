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


# ----------------------------------------------------------------------------------------------
# Branch by branch: every Reason path, its outcome, its precedence and its boundaries.
# ----------------------------------------------------------------------------------------------


def gate_reasons(verdict):
    """The reasons of the gates (the label-coverage reasons left out): (outcome, message)."""
    return [(r.outcome, r.message) for r in verdict.reasons if r.gate != "min_label_coverage"]


def drift_rows(rows):
    base = {"statistic": NAN, "p_value": NAN, "n_reference": 100, "n_current": 90}
    return pd.DataFrame([{**base, **r} for r in rows])


def auc(value, version="v2", slice_="overall", **extra):
    return {"model_version": version, "slice": slice_, "metric": "roc_auc", "value": value, **extra}


def regression_row(slice_="overall", metric="recall", **extra):
    row = {"slice": slice_, "metric": metric, "delta": -0.1, "q_value": 0.001, "outcome": "x"}
    return {**row, **extra}


def run(gates, frame=AUC_OK, compared=None, drift=NO_DRIFT, coverage=COVERAGE, **extra):
    return decide(spec(gates, **extra), frame, compared, drift, coverage)


@pytest.mark.parametrize(
    ("value", "outcome"),
    [(0.96, "hold"), (0.95, "pass"), (0.90, "pass")],  # the bound itself passes
)
def test_max_bound(value, outcome):
    verdict = run([{"metric": "roc_auc", "slice": "overall", "max": 0.95}], metrics([auc(value)]))
    [(got, message)] = gate_reasons(verdict)
    assert got == outcome
    assert verdict.decision == ("hold" if outcome == "hold" else "ship")
    if outcome == "hold":
        assert f"roc_auc on overall of v2 = {value:.4f} is above the maximum 0.95" in message
    else:
        assert "within bounds" in message


@pytest.mark.parametrize(("value", "outcome"), [(0.8, "pass"), (0.7999, "hold")])
def test_min_bound_is_inclusive(value, outcome):
    verdict = run([{"metric": "roc_auc", "slice": "overall", "min": 0.8}], metrics([auc(value)]))
    assert [o for o, _ in gate_reasons(verdict)] == [outcome]


@pytest.mark.parametrize(
    ("value", "outcome", "words"),
    [
        (0.85, "pass", "within bounds"),
        (0.75, "hold", "below the minimum 0.8"),
        (0.95, "hold", "above the maximum 0.9"),
    ],
)
def test_min_and_max_together(value, outcome, words):
    gate = {"metric": "roc_auc", "slice": "overall", "min": 0.8, "max": 0.9}
    [(got, message)] = gate_reasons(run([gate], metrics([auc(value)])))
    assert got == outcome
    assert words in message


def test_named_slice_below_min_slice_size_is_inconclusive_not_pass():
    frame = metrics([auc(0.99, slice_="country=FR", n=20, status="too_small")])
    verdict = run([{"metric": "roc_auc", "slice": "country=FR", "min": 0.8}], frame)
    assert verdict.decision == "inconclusive"
    [(outcome, message)] = gate_reasons(verdict)
    assert outcome == "inconclusive"
    assert message == "roc_auc on country=FR of v2: only 20 labeled rows, below min_slice_size 50"


def test_named_slice_below_min_slice_size_does_not_hide_a_hold_elsewhere():
    frame = metrics([auc(0.99, slice_="country=FR", n=20, status="too_small"), auc(0.5)])
    verdict = run(
        [
            {"metric": "roc_auc", "slice": "country=FR", "min": 0.8},
            {"metric": "roc_auc", "slice": "overall", "min": 0.8},
        ],
        frame,
    )
    assert [o for o, _ in gate_reasons(verdict)] == ["inconclusive", "hold"]
    assert verdict.decision == "hold"  # hold outranks inconclusive


def test_unnamed_slice_gate_judges_every_slice_with_enough_data():
    frame = metrics(
        [
            auc(0.9),
            auc(0.85, slice_="country=DE"),
            auc(0.1, slice_="country=FR", n=20, status="too_small"),  # too small: not judged
        ]
    )
    verdict = run([{"metric": "roc_auc", "min": 0.8}], frame)
    assert verdict.decision == "ship"
    assert [r.slice for r in verdict.reasons if r.gate != "min_label_coverage"] == [
        "overall",
        "country=DE",
    ]
    frame = metrics([auc(0.9), auc(0.7, slice_="country=DE")])
    verdict = run([{"metric": "roc_auc", "min": 0.8}], frame)
    assert verdict.decision == "hold"
    assert [r.slice for r in verdict.blocking] == ["country=DE"]


def test_unnamed_slice_gate_holds_when_no_slice_has_enough_data():
    frame = metrics([auc(0.9, n=20, status="too_small")])
    verdict = run([{"metric": "roc_auc", "min": 0.8}], frame)
    assert verdict.decision == "hold"
    assert gate_reasons(verdict) == [
        ("hold", "roc_auc of v2: no slice has enough labeled data to evaluate the gate")
    ]


def test_unnamed_slice_gate_holds_on_an_undefined_value():
    frame = metrics([auc(0.9), auc(NAN, slice_="country=DE")])
    verdict = run([{"metric": "roc_auc", "min": 0.8}], frame)
    assert verdict.decision == "hold"
    [message] = [r.message for r in verdict.blocking]
    assert message.startswith("roc_auc on country=DE of v2 is undefined in this window")


def test_bound_gate_judges_the_candidate_only_when_comparing():
    frame = metrics([auc(0.5, version="v1"), auc(0.9, version="v2")])
    assert run([{"metric": "roc_auc", "slice": "overall", "min": 0.8}], frame).decision == "ship"


def test_bound_gate_judges_every_version_without_compare():
    frame = metrics([auc(0.5, version="v1"), auc(0.9, version="v2")])
    verdict = run([{"metric": "roc_auc", "slice": "overall", "min": 0.8}], frame, compare=None)
    assert verdict.decision == "hold"
    assert [r.message.split(" = ")[0] for r in verdict.blocking] == ["roc_auc on overall of v1"]


@pytest.mark.parametrize(
    ("regression", "q", "outcome"),
    [
        (0.02, 1e-9, "pass"),  # exactly the tolerance is not beyond it
        (0.0201, 0.05, "hold"),  # q equal to alpha is significant
        (0.0201, 0.0501, "pass"),
    ],
)
def test_regression_gate_boundaries(regression, q, outcome):
    frame = comparison([regression_row(delta=-regression, q_value=q)])
    verdict = run([{"metric": "recall", "max_regression": 0.02}], compared=frame)
    assert [o for o, _ in gate_reasons(verdict)] == [outcome]


def test_regression_gate_uses_the_configured_alpha():
    frame = comparison([regression_row(q_value=0.07)])
    gates = [{"metric": "recall", "max_regression": 0.02}]
    assert run(gates, compared=frame).decision == "ship"
    assert run(gates, compared=frame, confidence={"alpha": 0.1}).decision == "hold"


def test_improvement_on_a_lower_is_better_metric_ships():
    frame = comparison([regression_row(metric="log_loss", delta=-0.2)])
    verdict = run([{"metric": "log_loss", "max_regression": 0.05}], compared=frame)
    assert verdict.decision == "ship"


def test_regression_gate_on_an_absent_named_slice_holds():
    frame = comparison([regression_row()])
    verdict = run(
        [{"metric": "recall", "slice": "country=ZZ", "max_regression": 0.02}], compared=frame
    )
    assert verdict.decision == "hold"
    [(outcome, message)] = gate_reasons(verdict)
    assert outcome == "hold"
    assert message.startswith("recall on slice 'country=ZZ': no labeled rows to compare")


def test_regression_gate_on_a_named_slice_without_paired_rows_holds():
    frame = comparison([regression_row(slice_="country=FR", n=0, delta=NAN, q_value=NAN)])
    gate = {"metric": "recall", "slice": "country=FR", "max_regression": 0.02}
    assert run([gate], compared=frame).decision == "hold"


def test_regression_gate_on_a_named_small_slice_is_inconclusive_with_the_true_count():
    frame = comparison(
        [regression_row(slice_="country=FR", n=12, p_value=NAN, q_value=NAN, outcome="not tested")]
    )
    gate = {"metric": "recall", "slice": "country=FR", "max_regression": 0.02}
    verdict = run([gate], compared=frame)
    assert verdict.decision == "inconclusive"
    assert gate_reasons(verdict) == [
        (
            "inconclusive",
            "recall on country=FR: only 12 labeled rows in the comparison, below min_slice_size 50",
        )
    ]


def test_small_slices_are_left_out_of_an_unnamed_regression_gate():
    frame = comparison(
        [
            regression_row(delta=0.0, q_value=1.0),
            regression_row(slice_="country=FR", n=12, delta=-0.5, q_value=0.0001),
        ]
    )
    verdict = run([{"metric": "recall", "max_regression": 0.02}], compared=frame)
    assert verdict.decision == "ship"


def test_regression_gate_holds_when_no_slice_was_large_enough():
    frame = comparison([regression_row(n=12, q_value=NAN, outcome="not tested")])
    verdict = run([{"metric": "recall", "max_regression": 0.02}], compared=frame)
    assert gate_reasons(verdict) == [("hold", "recall: no slice had enough paired data to compare")]


@pytest.mark.parametrize("slice_", [None, "country=DE"])
def test_undefined_delta_holds(slice_):
    frame = comparison(
        [
            regression_row(delta=0.01, q_value=0.5),
            regression_row(slice_="country=DE", delta=NAN, q_value=NAN, outcome="not tested"),
        ]
    )
    gate = {"metric": "recall", "max_regression": 0.02, "slice": slice_}
    verdict = run([{k: v for k, v in gate.items() if v is not None}], compared=frame)
    assert verdict.decision == "hold"
    [reason] = verdict.blocking
    assert reason.slice == "country=DE"
    assert "delta undefined" in reason.message


def test_regression_beyond_tolerance_with_an_undefined_test_is_inconclusive():
    frame = comparison([regression_row(delta=-0.1, p_value=NAN, q_value=NAN)])
    verdict = run([{"metric": "recall", "max_regression": 0.02}], compared=frame)
    assert verdict.decision == "inconclusive"
    [(outcome, message)] = gate_reasons(verdict)
    assert outcome == "inconclusive"
    assert "regressed by 0.1000 (tolerance 0.02) but its significance could not be tested" in (
        message
    )


def test_regression_within_tolerance_passes_even_when_the_test_is_undefined():
    frame = comparison([regression_row(delta=-0.01, p_value=NAN, q_value=NAN)])
    verdict = run([{"metric": "recall", "max_regression": 0.02}], compared=frame)
    assert verdict.decision == "ship"


def test_regression_pass_reports_the_largest_point_regression():
    frame = comparison(
        [
            regression_row(delta=-0.005, q_value=0.5),
            regression_row(slice_="country=DE", delta=-0.05, q_value=0.3),
            regression_row(slice_="country=FR", delta=0.02, q_value=0.4),
        ]
    )
    verdict = run([{"metric": "recall", "max_regression": 0.02}], compared=frame)
    [(outcome, message)] = gate_reasons(verdict)
    assert outcome == "pass"
    assert "on 3 slices; largest point regression on country=DE" in message


def test_one_significant_regression_among_passing_slices_holds_without_a_pass_reason():
    frame = comparison(
        [
            regression_row(delta=0.01, q_value=0.5),
            regression_row(slice_="country=DE", delta=-0.05, q_value=0.001),
        ]
    )
    verdict = run([{"metric": "recall", "max_regression": 0.02}], compared=frame)
    assert [(r.outcome, r.slice) for r in verdict.reasons if r.gate != "min_label_coverage"] == [
        ("hold", "country=DE")
    ]


@pytest.mark.parametrize(
    ("method", "row", "gate", "outcome"),
    [
        # The gate decides with drift_decision, Evidently's comparisons: a distance at the
        # bound is drift, a KS p-value at min_p_value is drift, a chi-square/z one is not.
        ("psi", {"statistic": 0.25}, {"max": 0.25}, "hold"),
        ("psi", {"statistic": 0.2499}, {"max": 0.25}, "pass"),
        ("psi", {"statistic": 0.2501}, {"max": 0.25}, "hold"),
        ("psi", {"statistic": NAN}, {"max": 0.25}, "hold"),  # a NaN statistic never passes
        ("wasserstein", {"statistic": 0.01, "p_value": 0.0}, {"max": 0.1}, "pass"),
        ("ks", {"statistic": 0.9, "p_value": 0.01}, {"min_p_value": 0.01}, "hold"),
        ("ks", {"statistic": 0.9, "p_value": 0.0101}, {"min_p_value": 0.01}, "pass"),
        ("ks", {"statistic": 0.0, "p_value": 0.0099}, {"min_p_value": 0.01}, "hold"),
        ("chi_square", {"statistic": 4.0, "p_value": 0.05}, {"min_p_value": 0.05}, "pass"),
        ("z_test", {"statistic": 2.0, "p_value": 0.0499}, {"min_p_value": 0.05}, "hold"),
        ("ks", {"statistic": 0.1, "p_value": NAN}, {"min_p_value": 0.01}, "hold"),
        ("chi_square", {"statistic": 1.0, "p_value": 0.5}, {"min_p_value": 0.05}, "pass"),
    ],
)
def test_drift_gate_paths(method, row, gate, outcome):
    drift = drift_rows([{"feature": "amount", "method": method, **row}])
    verdict = run([{"drift": method, **gate}], drift=drift)
    [(got, message)] = gate_reasons(verdict)
    assert got == outcome
    if np.isnan(row.get("p_value" if "min_p_value" in gate else "statistic", NAN)):
        assert message == f"{method} of amount is missing"
    elif outcome == "hold":
        assert message.startswith("amount drifted (")
        assert "reference n=100, current n=90" in message
    else:
        assert message.startswith("amount stable (")


def test_drift_gate_on_a_named_feature_without_a_result_holds():
    drift = drift_rows([{"feature": "amount", "method": "psi", "statistic": 0.01}])
    verdict = run([{"drift": "psi", "feature": "age", "max": 0.25}], drift=drift)
    assert gate_reasons(verdict) == [("hold", "no psi drift result for feature 'age'")]


def test_drift_gate_without_any_drift_result_holds():
    verdict = run([{"drift": "psi", "max": 0.25}])
    assert gate_reasons(verdict) == [("hold", "no psi drift result for any feature")]


FIRST_WEEK = (
    "no reference data for {}: no predictions in the reference weeks "
    "(drift.reference_weeks); drift is judged once earlier weeks hold predictions"
)


def first_week_rows(methods=("psi", "ks")):
    """What compute_drift returns for a model's first week: no reference rows, no statistic."""
    return drift_rows(
        [
            {"feature": f, "method": m, "n_reference": 0, "missing_reference": 0}
            for f in ("amount", "age")
            for m in methods
        ]
    )


@pytest.mark.parametrize(
    ("gate", "target"),
    [
        ({"drift": "psi", "max": 0.25}, "any feature"),
        ({"drift": "ks", "min_p_value": 0.01}, "any feature"),
        ({"drift": "psi", "feature": "age", "max": 0.25}, "feature 'age'"),
        # A method the first week has no row of: still no reference data, not a missing result.
        ({"drift": "wasserstein", "max": 0.1}, "any feature"),
    ],
)
def test_drift_gate_without_reference_data_is_inconclusive(gate, target):
    verdict = run([gate], drift=first_week_rows())
    assert gate_reasons(verdict) == [("inconclusive", FIRST_WEEK.format(target))]
    assert verdict.decision == "inconclusive"
    assert verdict.reasons[-1].feature == gate.get("feature")


def test_a_metric_hold_still_holds_in_a_first_week():
    frame = metrics([auc(0.6)])
    verdict = run(
        [{"metric": "roc_auc", "min": 0.8}, {"drift": "psi", "max": 0.25}],
        frame,
        drift=first_week_rows(),
    )
    assert [r.outcome for r in verdict.reasons if r.gate != "min_label_coverage"] == [
        "hold",
        "inconclusive",
    ]
    assert verdict.decision == "hold"


def test_a_feature_missing_in_the_reference_weeks_still_holds():
    # Reference rows exist but every value of the feature is NULL there: missing, not a first week.
    drift = drift_rows(
        [{"feature": "amount", "method": "psi", "n_reference": 0, "missing_reference": 40}]
    )
    verdict = run([{"drift": "psi", "max": 0.25}], drift=drift)
    assert gate_reasons(verdict) == [("hold", "psi of amount is missing")]


def test_no_reference_for_one_feature_only_judges_the_others():
    drift = drift_rows(
        [
            {"feature": "amount", "method": "psi", "statistic": 0.4},
            {"feature": "age", "method": "psi", "n_reference": 0, "missing_reference": 0},
        ]
    )
    verdict = run([{"drift": "psi", "feature": "amount", "max": 0.25}], drift=drift)
    assert gate_reasons(verdict)[0][0] == "hold"
    assert gate_reasons(verdict)[0][1].startswith("amount drifted (psi=0.4000 >= max 0.25")


@pytest.mark.parametrize(
    ("labeled", "minimum", "outcome"),
    [(500, 0.5, "pass"), (499, 0.5, "inconclusive"), (0, 0.0, "inconclusive")],
)
def test_label_coverage_boundary_and_zero_labels(labeled, minimum, outcome):
    coverage = COVERAGE.assign(rows=1000, labeled=labeled)
    verdict = run([{"drift": "psi", "max": 0.25}], coverage=coverage, min_label_coverage=minimum)
    coverage_reasons = [r.outcome for r in verdict.reasons if r.gate == "min_label_coverage"]
    assert coverage_reasons == [outcome]  # the candidate's coverage only, when comparing


def test_label_coverage_is_judged_per_evaluated_version():
    coverage = COVERAGE.assign(labeled=[0, 900])  # v1 unlabeled, v2 labeled
    frame = metrics([auc(0.9, version="v1"), auc(0.9)])
    verdict = run([{"drift": "psi", "max": 0.25}], frame, coverage=coverage, compare=None)
    outcomes = {r.message.split(":")[0]: r.outcome for r in verdict.reasons[:2]}
    assert outcomes == {"label coverage of v1": "inconclusive", "label coverage of v2": "pass"}


def test_metric_gates_wait_for_labels_instead_of_holding():
    coverage = COVERAGE.assign(labeled=[900, 0])  # the candidate's labels have not arrived
    verdict = run(
        [{"metric": "roc_auc", "slice": "overall", "min": 0.8}],
        metrics([]),  # no metric rows at all: would hold if the gate were judged
        coverage=coverage,
    )
    assert verdict.decision == "inconclusive"
    [(outcome, message)] = gate_reasons(verdict)
    assert outcome == "inconclusive"
    assert message.startswith("roc_auc: no labeled predictions of v2 in this window yet")


def test_regression_gates_wait_for_the_baseline_labels_too():
    coverage = COVERAGE.assign(labeled=[0, 900])  # the baseline's labels have not arrived
    frame = comparison([regression_row()])
    verdict = run([{"metric": "recall", "max_regression": 0.02}], compared=frame, coverage=coverage)
    assert gate_reasons(verdict)[0][0] == "inconclusive"
    assert "no labeled predictions of v1" in gate_reasons(verdict)[0][1]


@pytest.mark.parametrize(
    ("outcomes", "decision"),
    [
        (["pass", "pass"], "ship"),
        (["pass", "inconclusive"], "inconclusive"),
        (["inconclusive", "hold"], "hold"),
        (["hold", "inconclusive"], "hold"),
        (["hold", "pass"], "hold"),
    ],
)
def test_precedence_hold_over_inconclusive_over_ship(outcomes, decision):
    # Each outcome is produced by a real gate on its own feature.
    rows = {
        "pass": {"statistic": 0.01},
        "hold": {"statistic": 0.9},
        "inconclusive": None,
    }
    gates, drift, frame = [], [], []
    for i, outcome in enumerate(outcomes):
        feature = ["amount", "age"][i]
        if outcome == "inconclusive":
            slice_ = f"country=C{i}"
            gates.append({"metric": "roc_auc", "slice": slice_, "min": 0.5})
            frame.append(auc(0.9, slice_=slice_, n=5, status="too_small"))
        else:
            gates.append({"drift": "psi", "feature": feature, "max": 0.25})
            drift.append({"feature": feature, "method": "psi", **rows[outcome]})
    verdict = run(gates, metrics(frame), drift=drift_rows(drift) if drift else NO_DRIFT)
    assert [o for o, _ in gate_reasons(verdict)] == outcomes
    assert verdict.decision == decision
    assert [r.outcome for r in verdict.blocking] == [o for o in outcomes if o != "pass"]


def test_verdict_serialises_every_reason():
    verdict = run([{"metric": "roc_auc", "slice": "overall", "min": 0.95}])
    payload = verdict.to_dict()
    assert payload["decision"] == "hold"
    assert (payload["candidate"], payload["baseline"], payload["model"]) == ("v2", "v1", "m")
    assert [r["outcome"] for r in payload["reasons"]] == ["pass", "hold"]


def test_a_slice_of_exactly_min_slice_size_is_tested():
    frame = comparison([regression_row(slice_="country=FR", n=50, delta=-0.1, q_value=0.001)])
    gate = {"metric": "recall", "slice": "country=FR", "max_regression": 0.02}
    assert [o for o, _ in gate_reasons(run([gate], compared=frame))] == ["hold"]


def test_a_regression_of_exactly_the_tolerance_passes_even_when_untested():
    frame = comparison([regression_row(delta=-0.02, p_value=NAN, q_value=NAN)])
    verdict = run([{"metric": "recall", "max_regression": 0.02}], compared=frame)
    assert [o for o, _ in gate_reasons(verdict)] == ["pass"]


def test_one_labeled_prediction_of_one_is_full_coverage():
    coverage = COVERAGE.assign(rows=1, labeled=1)
    verdict = run([{"drift": "psi", "max": 0.25}], coverage=coverage)
    assert [r.outcome for r in verdict.reasons if r.gate == "min_label_coverage"] == ["pass"]


def test_a_version_absent_from_the_window_waits_for_labels():
    coverage = COVERAGE[COVERAGE["model_version"] == "v1"]  # no row of the candidate at all
    verdict = run(
        [{"metric": "roc_auc", "slice": "overall", "min": 0.8}], metrics([]), coverage=coverage
    )
    assert [o for o, _ in gate_reasons(verdict)] == ["inconclusive"]


def test_undefined_numbers_read_missing_and_gate_names_list_only_what_was_set():
    frame = metrics([auc(NAN, ci_low=NAN, ci_high=NAN)])
    verdict = run([{"metric": "roc_auc", "slice": "overall", "min": 0.8}], frame)
    [reason] = verdict.blocking
    assert reason.gate == "{metric=roc_auc, slice=overall, min=0.8}"
    assert reason.message == (
        "roc_auc on overall of v2 is undefined in this window (95% CI [missing, missing], n=500)"
    )


def test_a_regression_gate_without_compare_holds_even_when_given_a_comparison():
    frame = comparison([regression_row(delta=0.0, q_value=1.0)])
    verdict = run([{"metric": "recall", "max_regression": 0.02}], compared=frame, compare=None)
    assert ("hold", "max_regression needs a 'compare' section in the spec") in gate_reasons(verdict)


def test_equal_point_regressions_name_the_first_slice():
    frame = comparison(
        [
            regression_row(delta=-0.01, q_value=0.5),
            regression_row(slice_="country=DE", delta=-0.01, q_value=0.5),
        ]
    )
    verdict = run([{"metric": "recall", "max_regression": 0.02}], compared=frame)
    [reason] = [r for r in verdict.reasons if r.gate != "min_label_coverage"]
    assert reason.slice == "overall"


def test_a_named_feature_without_reference_rows_is_inconclusive_beside_judged_features():
    drift = drift_rows(
        [
            {"feature": "amount", "method": "psi", "statistic": NAN, "n_reference": 0},
            {"feature": "age", "method": "psi", "statistic": 0.9},
        ]
    )
    verdict = run([{"drift": "psi", "feature": "amount", "max": 0.25}], drift=drift)
    [(outcome, message)] = gate_reasons(verdict)
    assert outcome == "inconclusive"
    assert message.startswith("no reference data for feature 'amount'")


def test_no_reference_rows_without_a_missing_reference_column_is_still_a_first_week():
    drift = drift_rows([{"feature": "amount", "method": "psi", "n_reference": 0}])
    assert "missing_reference" not in drift
    verdict = run([{"drift": "psi", "max": 0.25}], drift=drift)
    assert [o for o, _ in gate_reasons(verdict)] == ["inconclusive"]
