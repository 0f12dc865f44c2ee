"""Gates and the release verdict: ship, hold or inconclusive, failing closed.

* ``hold``: a gate failed: an absolute bound is violated, a regression beyond the tolerance
  is statistically significant (BH q-value at most ``confidence.alpha``), a feature drifted,
  or a gate cannot be evaluated because its metric, slice or drift row is missing.
* ``inconclusive``: nothing failed, but the data cannot support a decision: label coverage
  below ``min_label_coverage``, a slice a gate names is below ``min_slice_size``, or no gates.
* ``ship_with_guardrails``: nothing held and nothing was inconclusive, but a gate with
  ``severity: warn`` failed or could not be evaluated; ``verdict.json`` lists those gates
  under ``guardrails``, with their reasons.
* ``ship``: every gate was evaluated and passed.

Precedence: hold > inconclusive > ship_with_guardrails > ship. A ``warn`` gate never holds
and never makes the verdict inconclusive: whatever it could not pass (a failed bound, a
missing metric, too small a slice, no labels yet) becomes a guardrail (outcome ``warn``), so
an unevaluable warn gate is never silently a pass (fail closed) yet weighs no more than its
failure would. Gates with the default ``severity: block`` are unchanged: a missing metric on
them still holds, and the data's own sufficiency (``min_label_coverage``) is no gate and
still makes the verdict inconclusive.

Every reason names the gate, the slice or feature, and the numbers.

A gate on a label-free estimate (``estimated_<metric>``, docs/estimation.md) is judged on the
week's predictions without labels: when every metric gate is one, label coverage no longer
makes the verdict inconclusive, an estimate without calibration (no labeled reference weeks)
does, and the verdict carries an ``estimation`` reason saying it rests on estimates.
"""

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from eval_pipelines.drift_stats import METHODS as DRIFT_METHODS
from eval_pipelines.drift_stats import drift_comparison, drift_decision
from eval_pipelines.estimation import is_estimated
from eval_pipelines.spec import OVERALL, DriftGate, EvalSpec, MetricGate
from eval_pipelines.tasks import metric_of, task_named
from eval_pipelines.vocabulary import level_label

SHIP, HOLD, INCONCLUSIVE = "ship", "hold", "inconclusive"
SHIP_WITH_GUARDRAILS = "ship_with_guardrails"
# Every decision, the most severe first (the precedence of decide()).
DECISIONS = (HOLD, INCONCLUSIVE, SHIP_WITH_GUARDRAILS, SHIP)
PASS = "pass"
WARN = "warn"  # a reason's outcome: a ``severity: warn`` gate that did not pass


@dataclass(frozen=True)
class Reason:
    gate: str
    outcome: str  # pass | hold | inconclusive | warn
    message: str
    slice: str | None = None
    feature: str | None = None
    # Higher is worse, comparable within one gate and outcome (how far past the bound, how
    # close to it for a pass): picks the line people see first (eval_pipelines/reasons.py).
    severity: float = 0.0


@dataclass
class Verdict:
    decision: str
    reasons: list[Reason] = field(default_factory=list)
    window: str = ""
    model: str = ""
    candidate: str | None = None
    baseline: str | None = None

    @property
    def blocking(self) -> list[Reason]:
        return [r for r in self.reasons if r.outcome not in (PASS, WARN)]

    @property
    def guardrails(self) -> list[Reason]:
        """The reasons of ``severity: warn`` gates that did not pass."""
        return [r for r in self.reasons if r.outcome == WARN]

    def to_dict(self) -> dict:
        return {
            "decision": self.decision,
            "model": self.model,
            "window": self.window,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "reasons": [asdict(r) for r in self.reasons],
            "guardrails": [
                {"gate": r.gate, "message": r.message, "slice": r.slice, "feature": r.feature}
                for r in self.guardrails
            ],
        }


def _fmt(value: float) -> str:
    return "missing" if value is None or np.isnan(value) else f"{value:.4f}"


def _describe(gate: MetricGate | DriftGate) -> str:
    # exclude_defaults: ``severity`` shows only when it is ``warn``, so block gates keep the
    # names they had before severities existed.
    dumped = gate.model_dump(exclude_none=True, exclude_defaults=True)
    parts = [f"{k}={v}" for k, v in dumped.items()]
    return "{" + ", ".join(parts) + "}"


def _target_versions(spec: EvalSpec, metrics: pd.DataFrame) -> list[str]:
    if spec.compare:
        return [spec.compare.candidate]
    return sorted(metrics["model_version"].unique())


def _metric_bound(gate: MetricGate, spec: EvalSpec, metrics: pd.DataFrame) -> list[Reason]:
    name = _describe(gate)
    reasons = []
    for version in _target_versions(spec, metrics):
        rows = metrics[(metrics["model_version"] == version) & (metrics["metric"] == gate.metric)]
        if gate.slice is not None:
            chosen = rows[rows["slice"] == gate.slice]
            if chosen.empty or int(chosen["n"].iloc[0]) == 0:
                reasons.append(
                    Reason(
                        name,
                        HOLD,
                        f"{gate.metric} on slice {gate.slice!r} of {version}: the slice has no "
                        "labeled data in this window, so the gate cannot pass",
                        slice=gate.slice,
                    )
                )
                continue
        else:
            chosen = rows[rows["status"] == "ok"]
            if chosen.empty:
                reasons.append(
                    Reason(
                        name,
                        HOLD,
                        f"{gate.metric} of {version}: no slice has enough labeled data "
                        "to evaluate the gate",
                    )
                )
        for row in chosen.itertuples(index=False):
            where = f"{gate.metric} on {row.slice} of {version}"
            ci = (
                f"{level_label(spec.confidence.level)} CI [{_fmt(row.ci_low)}, "
                f"{_fmt(row.ci_high)}], n={row.n}"
            )
            if row.status == "too_small":
                reasons.append(
                    Reason(
                        name,
                        INCONCLUSIVE,
                        f"{where}: only {row.n} {task_named(spec.task).count_unit}, below "
                        "min_slice_size "
                        f"{spec.min_slice_size}",
                        slice=row.slice,
                        severity=-float(row.n),
                    )
                )
                continue
            if np.isnan(row.value):
                reasons.append(
                    Reason(
                        name,
                        HOLD,
                        f"{where} is undefined in this window ({ci})",
                        slice=row.slice,
                    )
                )
                continue
            failed = []
            if gate.min is not None and row.value < gate.min:
                failed.append(f"below the minimum {gate.min}")
            if gate.max is not None and row.value > gate.max:
                failed.append(f"above the maximum {gate.max}")
            outcome = HOLD if failed else PASS
            verb = " and ".join(failed) if failed else "within bounds"
            # Distance past the nearest bound: positive when violated, negative margin when not.
            past = [gate.min - row.value if gate.min is not None else -np.inf]
            past.append(row.value - gate.max if gate.max is not None else -np.inf)
            reasons.append(
                Reason(
                    name,
                    outcome,
                    f"{where} = {_fmt(row.value)} is {verb} ({ci})",
                    slice=row.slice,
                    severity=float(max(past)),
                )
            )
    return reasons


def _metric_regression(
    gate: MetricGate, spec: EvalSpec, comparison: pd.DataFrame | None
) -> list[Reason]:
    name = _describe(gate)
    if spec.compare is None or comparison is None:
        return [Reason(name, HOLD, "max_regression needs a 'compare' section in the spec")]
    alpha = spec.confidence.alpha
    rows = comparison[comparison["metric"] == gate.metric]
    if gate.slice is not None:
        rows = rows[rows["slice"] == gate.slice]
        if rows.empty or int(rows["n"].iloc[0]) == 0:
            return [
                Reason(
                    name,
                    HOLD,
                    f"{gate.metric} on slice {gate.slice!r}: no labeled rows to compare in this "
                    "window (tests on paired requests count requests both versions scored), "
                    "so the gate cannot pass",
                    slice=gate.slice,
                )
            ]
    metric = metric_of(spec.task, gate.metric)
    reasons = []
    worst_pass: Reason | None = None
    worst_regression = -np.inf
    for row in rows.itertuples(index=False):
        where = f"{gate.metric} on {row.slice}"
        if row.n < spec.min_slice_size:
            # Too little data to test: a slice the gate names cannot be judged either way; on
            # an unnamed gate the slice is left out (its size is reported with the metrics).
            if gate.slice is not None:
                reasons.append(
                    Reason(
                        name,
                        INCONCLUSIVE,
                        f"{where}: only {row.n} {task_named(spec.task).count_unit} in the "
                        "comparison, below "
                        f"min_slice_size {spec.min_slice_size}",
                        slice=row.slice,
                        severity=-float(row.n),
                    )
                )
            continue
        regression = metric.regression(row.delta, row.baseline, row.candidate)
        if np.isnan(regression):
            reasons.append(
                Reason(
                    name,
                    HOLD,
                    f"{where}: delta undefined ({spec.compare.baseline} "
                    f"{_fmt(row.baseline)} -> {spec.compare.candidate} {_fmt(row.candidate)}, "
                    f"n={row.n}), so the gate cannot pass",
                    slice=row.slice,
                )
            )
            continue
        numbers = (
            f"{spec.compare.baseline} {_fmt(row.baseline)} -> {spec.compare.candidate} "
            f"{_fmt(row.candidate)}, delta {row.delta:+.4f} "
            f"[{_fmt(row.delta_ci_low)}, {_fmt(row.delta_ci_high)}], q={row.q_value:.3g}"
        )
        if regression > gate.max_regression and np.isnan(row.q_value):
            # Beyond the tolerance but the test is undefined (e.g. replicates without positives):
            # neither a significant regression nor a pass.
            reasons.append(
                Reason(
                    name,
                    INCONCLUSIVE,
                    f"{where} regressed by {regression:.4f} (tolerance {gate.max_regression}) "
                    f"but its significance could not be tested: {numbers}",
                    slice=row.slice,
                    severity=float(regression - gate.max_regression),
                )
            )
        elif regression > gate.max_regression and row.q_value <= alpha:
            reasons.append(
                Reason(
                    name,
                    HOLD,
                    f"{where} regressed significantly by {regression:.4f} (tolerance "
                    f"{gate.max_regression}): {numbers}",
                    slice=row.slice,
                    severity=float(regression - gate.max_regression),
                )
            )
        elif regression > worst_regression:
            worst_regression = regression
            worst_pass = Reason(
                name,
                PASS,
                f"no significant regression of {gate.metric} beyond {gate.max_regression} "
                f"on {len(rows)} slices; largest point regression on {row.slice}: {numbers}",
                slice=row.slice,
            )
    if worst_pass is not None and not any(r.outcome == HOLD for r in reasons):
        reasons.append(worst_pass)
    if not reasons:
        reasons.append(
            Reason(name, HOLD, f"{gate.metric}: no slice had enough paired data to compare")
        )
    return reasons


def _estimated_bound(gate: MetricGate, spec: EvalSpec, metrics: pd.DataFrame) -> list[Reason]:
    """A ``min``/``max`` gate on a label-free estimate (``estimated_<metric>``, CBPE): judged
    on every prediction of the week, labeled or not; no calibration is inconclusive."""
    assert spec.estimation is not None
    name = _describe(gate)
    level = level_label(spec.confidence.level)
    reasons = []
    for version in _target_versions(spec, metrics):
        rows = metrics[(metrics["model_version"] == version) & (metrics["metric"] == gate.metric)]
        if gate.slice is not None:
            rows = rows[rows["slice"] == gate.slice]
        if rows.empty:
            reasons.append(Reason(name, HOLD, f"{gate.metric} of {version} is missing"))
            continue
        if (rows["status"] == "no_reference").any():
            # No calibration for this version at all: nothing to judge, in no slice.
            reasons.append(
                Reason(
                    name,
                    INCONCLUSIVE,
                    f"{gate.metric} of {version}: no estimate, too few labeled rows of "
                    f"{version} (or only one class) in the {spec.estimation.reference_weeks} "
                    "weeks before this one to calibrate the scores on (estimation."
                    "reference_weeks, estimation.min_reference_rows)",
                    slice=gate.slice,
                )
            )
            continue
        for row in rows.itertuples(index=False):
            where = f"{gate.metric} on {row.slice} of {version}"
            if row.status != "ok" and gate.slice is None and row.slice != OVERALL:
                continue  # an unnamed gate leaves out small slices, as for realized metrics
            if row.status != "ok":
                reasons.append(
                    Reason(
                        name,
                        INCONCLUSIVE if row.n else HOLD,
                        f"{where}: only {row.n} predictions, below min_slice_size "
                        f"{spec.min_slice_size}",
                        slice=row.slice,
                        severity=-float(row.n),
                    )
                )
                continue
            ci = f"{level} CI [{_fmt(row.ci_low)}, {_fmt(row.ci_high)}], n={row.n} predictions"
            if np.isnan(row.value):
                reasons.append(Reason(name, HOLD, f"{where} is undefined ({ci})", slice=row.slice))
                continue
            failed = []
            if gate.min is not None and row.value < gate.min:
                failed.append(f"below the minimum {gate.min}")
            if gate.max is not None and row.value > gate.max:
                failed.append(f"above the maximum {gate.max}")
            past = [gate.min - row.value if gate.min is not None else -np.inf]
            past.append(row.value - gate.max if gate.max is not None else -np.inf)
            reasons.append(
                Reason(
                    name,
                    HOLD if failed else PASS,
                    f"{where} = {_fmt(row.value)} (label-free estimate) is "
                    f"{' and '.join(failed) if failed else 'within bounds'} ({ci})",
                    slice=row.slice,
                    severity=float(max(past)),
                )
            )
    return reasons


def rests_on_estimates(spec: EvalSpec) -> Reason:
    """The reason that says a verdict was decided (in part) on estimates, not labels."""
    assert spec.estimation is not None
    gated = sorted({g.metric for g in spec.metric_gates if is_estimated(g.metric)})
    return Reason(
        "estimation",
        PASS,
        f"this verdict rests on label-free estimates ({', '.join(gated)}): CBPE, the scores "
        f"calibrated on the labeled rows of the {spec.estimation.reference_weeks} weeks before "
        "this one; the estimates assume the relation between score and label has not changed "
        "since (docs/estimation.md)",
    )


def no_reference_data(rows: pd.DataFrame) -> bool:
    """Drift rows with no reference rows at all (not merely missing values): a model's first
    weeks. Drift is then not judged: gates are inconclusive and the report says why."""
    if rows.empty or "n_reference" not in rows:
        return False
    missing = rows.get("missing_reference", 0)
    return bool(((rows["n_reference"] == 0) & (missing == 0)).all())


def _drift_gate(gate: DriftGate, drift: pd.DataFrame) -> list[Reason]:
    name = _describe(gate)
    rows = drift[drift["method"] == gate.drift] if not drift.empty else drift
    if gate.feature is not None and not rows.empty:
        rows = rows[rows["feature"] == gate.feature]
    target = f"feature {gate.feature!r}" if gate.feature else "any feature"
    scope = drift
    if gate.feature is not None and not drift.empty:
        scope = drift[drift["feature"] == gate.feature]
    if no_reference_data(scope):
        # A model's first weeks: nothing to compare with, which is neither drift nor stability.
        return [
            Reason(
                name,
                INCONCLUSIVE,
                f"no reference data for {target}: no predictions in the reference weeks "
                "(drift.reference_weeks); drift is judged once earlier weeks hold predictions",
                feature=gate.feature,
            )
        ]
    if rows.empty:
        return [Reason(name, HOLD, f"no {gate.drift} drift result for {target}")]
    reasons = []
    is_test = DRIFT_METHODS[gate.drift].statistic == "p_value"
    for row in rows.itertuples(index=False):
        value = row.p_value if is_test else row.statistic
        if np.isnan(value):
            reasons.append(
                Reason(name, HOLD, f"{gate.drift} of {row.feature} is missing", feature=row.feature)
            )
            continue
        # The one drift decision (drift_stats.drift_decision) with the gate's bound as the
        # threshold; drift.threshold_for gives the row the same threshold, so the gate, the
        # row's `drifted` and the report agree on this feature and method.
        limit = gate.min_p_value if is_test else gate.max
        failed = drift_decision(gate.drift, row.statistic, row.p_value, limit)
        sign = drift_comparison(gate.drift, failed)
        if is_test:
            bound = f"p={value:.3g} {sign} min_p_value {gate.min_p_value}"
        else:
            bound = f"{gate.drift}={value:.4f} {sign} max {gate.max}"
        counts = f"reference n={row.n_reference}, current n={row.n_current}"
        message = (
            f"{row.feature} drifted ({bound}; {counts})"
            if failed
            else f"{row.feature} stable ({bound})"
        )
        # How far past the bound (a pass: how close to it), for the line people see first.
        severity = float(limit - value if is_test else value - limit)
        reasons.append(
            Reason(name, HOLD if failed else PASS, message, feature=row.feature, severity=severity)
        )
    return reasons


def decide(
    spec: EvalSpec,
    metrics: pd.DataFrame,
    comparison: pd.DataFrame | None,
    drift: pd.DataFrame,
    coverage: pd.DataFrame,
    window: str = "",
) -> Verdict:
    reasons: list[Reason] = []
    # Metric gates only on label-free estimates (and drift gates) need no labels this week.
    estimated_only = bool(spec.metric_gates) and all(
        is_estimated(g.metric) for g in spec.metric_gates
    )
    for version in _target_versions(spec, metrics):
        overall = coverage[(coverage["slice"] == OVERALL) & (coverage["model_version"] == version)]
        rows = int(overall["rows"].sum())
        labeled = int(overall["labeled"].sum())
        share = labeled / rows if rows else 0.0
        outcome = PASS if share >= spec.min_label_coverage and labeled > 0 else INCONCLUSIVE
        note = ""
        if outcome == INCONCLUSIVE and estimated_only:
            outcome = PASS
            note = "; the metric gates use label-free estimates, which need no labels"
        reasons.append(
            Reason(
                "min_label_coverage",
                outcome,
                f"label coverage of {version}: {share:.1%} ({labeled:,} of {rows:,} "
                f"{task_named(spec.task).coverage_unit} labeled) vs minimum "
                f"{spec.min_label_coverage:.0%}{note}",
            )
        )
    if not spec.gates:
        reasons.append(Reason("gates", INCONCLUSIVE, "no gates configured: nothing to decide on"))
    overall = coverage[coverage["slice"] == OVERALL].groupby("model_version")["labeled"].sum()
    for gate in spec.parsed_gates:
        if isinstance(gate, DriftGate):
            reasons += _drift_gate(gate, drift)
            continue
        if is_estimated(gate.metric):
            reasons += _estimated_bound(gate, spec, metrics)
            continue
        # No labels yet (they arrive within labels.max_delay): a metric gate cannot be judged
        # either way, so the verdict waits instead of holding on missing data.
        needed = _target_versions(spec, metrics)
        if gate.max_regression is not None and spec.compare is not None:
            needed = [spec.compare.baseline, spec.compare.candidate]
        waiting = [v for v in needed if int(overall.get(v, 0)) == 0]
        if waiting:
            reasons.append(
                Reason(
                    _describe(gate),
                    INCONCLUSIVE,
                    f"{gate.metric}: no labeled predictions of {', '.join(waiting)} in this "
                    "window yet (a label counts if it arrives within labels.max_delay); "
                    "re-run when labels have arrived",
                )
            )
            continue
        if gate.max_regression is not None:
            reasons += _metric_regression(gate, spec, comparison)
        if isinstance(gate, MetricGate) and (gate.min is not None or gate.max is not None):
            reasons += _metric_bound(gate, spec, metrics)
    reasons = _as_guardrails(spec, reasons)
    if any(is_estimated(g.metric) for g in spec.metric_gates):
        reasons.append(rests_on_estimates(spec))
    outcomes = {r.outcome for r in reasons}
    decision = next((d for d, o in _DECIDED_BY if o in outcomes), SHIP)
    return Verdict(
        decision=decision,
        reasons=reasons,
        window=window,
        model=spec.model,
        candidate=spec.compare.candidate if spec.compare else None,
        baseline=spec.compare.baseline if spec.compare else None,
    )


# The first decision whose reason outcome is present wins (the precedence, module docstring).
_DECIDED_BY = ((HOLD, HOLD), (INCONCLUSIVE, INCONCLUSIVE), (SHIP_WITH_GUARDRAILS, WARN))


def _as_guardrails(spec: EvalSpec, reasons: list[Reason]) -> list[Reason]:
    """The hold and inconclusive reasons of ``severity: warn`` gates become guardrails
    (``warn``). A warn gate's name carries ``severity=warn`` (``_describe``), so it never
    shares its name with a block gate."""
    warn = {_describe(g) for g in spec.parsed_gates if g.severity == "warn"}
    return [
        replace(r, outcome=WARN) if r.gate in warn and r.outcome != PASS else r for r in reasons
    ]
