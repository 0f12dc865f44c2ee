"""Label-free performance estimation: confidence-based performance estimation (CBPE).

A week's labels arrive late, so its realized metrics wait for them. CBPE (NannyML) estimates
them from the scores alone: calibrate the scores on labeled weeks before (isotonic
regression), then take the metric of the *expected* confusion matrix, each row counting its
calibrated probability as a positive. ``estimation: {reference_weeks: 4}`` in a spec turns it
on; each estimated metric is a row ``estimated_<metric>`` of ``metrics.parquet`` beside the
realized one, with an interval, and a gate can bound it (docs/estimation.md).

Each task that supports estimation registers the metrics it estimates here; its estimator
module turns the warehouse's histograms into the task's expected statistics, so the metric
formulas stay in the task's registry:

* ``binary_classification``: :mod:`eval_pipelines.estimation.binary` (accuracy, precision,
  recall, F1, ROC AUC);
* ``multiclass_classification``: :mod:`eval_pipelines.estimation.multiclass` (accuracy,
  macro F1; needs ``predictions.class_scores``), run by
  :mod:`eval_pipelines.estimation.multiclass_week`.

This module imports no SQL or spec code, so the spec can read the registry without a cycle;
:mod:`eval_pipelines.estimation.week` runs an estimation (the task's runner).
"""

from eval_pipelines.estimation.binary import ESTIMATED_METRICS as BINARY_ESTIMATED
from eval_pipelines.estimation.multiclass import ESTIMATED_METRICS as MULTICLASS_ESTIMATED

PREFIX = "estimated_"
# How the metric catalogue (:mod:`eval_pipelines.catalogue`) describes an estimated row.
ESTIMATE_FORMULA = (
    "{formula}, on the expected statistic of the week's scores isotonic-calibrated on the "
    "labeled rows of the reference weeks (CBPE)"
)
ESTIMATE_INTERVAL = (
    "percentile bootstrap over the week's score-histogram cells, rows redrawn Poisson and "
    "labels Binomial at the calibrated probability, calibration fixed"
)
ESTIMATE_TEST = "not compared (no paired comparison of estimates; gates bound the estimate)"
ESTIMATE_REFERENCE = (
    "NannyML, Confidence-based Performance Estimation (CBPE), "
    "nannyml/performance_estimation/confidence_based/ (0.13.1)"
)

# task name -> the metrics of that task its estimator estimates.
ESTIMABLE: dict[str, tuple[str, ...]] = {
    "binary_classification": BINARY_ESTIMATED,
    "multiclass_classification": MULTICLASS_ESTIMATED,
}


def spec_problem(task: str, class_scores: bool) -> str | None:
    """Why a spec of ``task`` with an ``estimation`` section cannot be estimated, else None:
    multiclass CBPE calibrates the class scores, so it needs them."""
    if task == "multiclass_classification" and not class_scores:
        return (
            "estimation: task 'multiclass_classification' estimates from the class scores; "
            "give predictions.class_scores (one probability column per class) or remove "
            "the 'estimation' section"
        )
    return None


def is_estimated(name: str) -> bool:
    """Whether ``name`` is an estimated metric's row name (``estimated_roc_auc``)."""
    return name.startswith(PREFIX)


def estimated_name(metric: str) -> str:
    return PREFIX + metric


def base_metric(name: str) -> str:
    """The realized metric an estimated row estimates: ``estimated_f1`` -> ``f1``."""
    return name[len(PREFIX) :] if is_estimated(name) else name


def estimated_names() -> list[str]:
    """Every estimated metric name of every task (what a gate may name)."""
    return list(dict.fromkeys(PREFIX + m for metrics in ESTIMABLE.values() for m in metrics))


def estimated_metrics(task: str, metrics: list[str]) -> list[str]:
    """The metrics among ``metrics`` that ``task``'s estimator estimates, in their order."""
    supported = ESTIMABLE.get(task, ())
    return [m for m in metrics if m in supported]


def gate_problem(task: str, metrics: list[str], enabled: bool, name: str) -> str | None:
    """Why a gate on the estimated metric ``name`` cannot run for this spec, else None."""
    base = base_metric(name)
    if task not in ESTIMABLE:
        return f"{name!r}: task {task!r} has no label-free estimator"
    if base not in ESTIMABLE[task]:
        known = ", ".join(PREFIX + m for m in ESTIMABLE[task])
        return f"{name!r} is not estimated for task {task!r}; estimated: {known}"
    if base not in metrics:
        return f"{name!r} estimates {base!r}, which is not in metrics; add {base!r} there"
    if not enabled:
        return f"{name!r} needs an 'estimation' section (e.g. estimation: {{reference_weeks: 4}})"
    return None
