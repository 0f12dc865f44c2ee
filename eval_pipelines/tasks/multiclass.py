"""The multiclass classification task: metrics of a predicted class (and optional class scores).

Every metric is a function of one family of :mod:`eval_pipelines.stats.multiclass`, vectorised
over any leading axes, so one code path serves point estimates and every bootstrap replicate:

* from the C x C confusion matrix ``M[label, predicted]`` (exact): ``accuracy``
  (``accuracy_score``), ``balanced_accuracy`` (``balanced_accuracy_score``: the mean recall
  over the classes present in the labels), per-class ``precision.<class>``,
  ``recall.<class>``, ``f1.<class>`` and their unweighted means ``macro_precision``,
  ``macro_recall``, ``macro_f1`` over every declared class, ``micro_f1`` (equal to accuracy:
  every label is a declared class) and ``weighted_f1`` (weighted by each class's support):
  scikit-learn's ``precision_recall_fscore_support(labels=classes, zero_division=0)``. A
  per-class value whose denominator is 0 (a class never predicted: precision; never a label:
  recall; neither: F1) is **0**, scikit-learn's ``zero_division=0``, and enters the macro
  means as 0; a slice with no labeled row gives NaN (undefined) for every metric;
* from the true class's rank among the row's class scores (exact): ``top_<k>_accuracy`` for
  any k >= 2, the share of rows whose true class is among the k highest scores
  (``top_k_accuracy_score``; ties: the class later in the declared order ranks first, which
  is scikit-learn's rule when the classes are declared in sorted order);
* from the summed log-loss terms (exact): ``log_loss``, the mean of
  ``-log(clip(p_true, eps, 1 - eps))`` with the float64 eps (``log_loss``; scores are not
  renormalised, as scikit-learn does not);
* from the per-class score histograms (binned): ``roc_auc_ovr``, the unweighted mean over the
  declared classes of each class's one-vs-rest ROC AUC (``roc_auc_score(multi_class="ovr",
  average="macro")``); NaN when a class has no positive or no negative row in the slice (as
  scikit-learn). Its error bound is the mean of the classes' binary ROC AUC bounds
  (within-bin pairs counted as ties).

References: scikit-learn, ``sklearn.metrics`` (Pedregosa et al. 2011, JMLR 12);
Sokolova & Lapalme (2009), "A systematic analysis of performance measures for classification
tasks", Information Processing & Management 45 (macro/micro averages); Brodersen et al.
(2010), "The balanced accuracy and its posterior distribution", ICPR; Provost & Domingos
(2000), "Well-trained PETs: improving probability estimation trees" (one-vs-rest AUC);
Hanley & McNeil (1982) (ROC AUC from ranks).
"""

import difflib
import re
from functools import cache, partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from eval_pipelines.curves import CurveInputs, roc_pr_curves
from eval_pipelines.inference.significance import mcnemar_exact
from eval_pipelines.stats.multiclass import (
    CLASS_HISTOGRAM,
    CONFUSION,
    MAX_CLASSES,
    ClassHistogram,
    ConfusionBuckets,
    ConfusionStats,
    MulticlassPairs,
    classes_of,
    parse_pairs,
    score_columns,
)
from eval_pipelines.tasks.base import Metric, PairedTest, RowCounts, Task, divide
from eval_pipelines.tasks.binary import roc_auc_error_bound, roc_auc_from_histograms

if TYPE_CHECKING:
    from eval_pipelines.spec import EvalSpec
    from eval_pipelines.sqlbuild import SqlBuilder
    from eval_pipelines.windows import Window

NAME = "multiclass_classification"
_TOP_K = re.compile(r"^top_([1-9][0-9]*)_accuracy$")


def _zero_division(numerator: np.ndarray, denominator: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` per class, 0 where the denominator is 0 (scikit-learn's
    ``zero_division=0``), NaN for every class of a slice without labeled rows."""
    value = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)
    return np.where(np.asarray(n)[..., None] > 0, value, np.nan)


def _true_positives(stats: ConfusionStats) -> np.ndarray:
    return np.diagonal(stats.count, axis1=-2, axis2=-1)


def class_precision(stats: ConfusionStats) -> np.ndarray:
    """Per class ``[..., C]``: ``TP_c / (TP_c + FP_c)`` = ``M[c, c] / sum_i M[i, c]``."""
    return _zero_division(_true_positives(stats), stats.count.sum(-2), stats.n)


def class_recall(stats: ConfusionStats) -> np.ndarray:
    """Per class ``[..., C]``: ``TP_c / (TP_c + FN_c)`` = ``M[c, c] / sum_j M[c, j]``."""
    return _zero_division(_true_positives(stats), stats.count.sum(-1), stats.n)


def class_f1(stats: ConfusionStats) -> np.ndarray:
    """Per class ``[..., C]``: ``2 TP_c / (2 TP_c + FP_c + FN_c)`` (van Rijsbergen 1979)."""
    tp = _true_positives(stats)
    return _zero_division(2 * tp, stats.count.sum(-2) + stats.count.sum(-1), stats.n)


def accuracy(stats: ConfusionStats) -> np.ndarray:
    """``sum_c M[c, c] / N`` (scikit-learn ``accuracy_score``)."""
    return divide(_true_positives(stats).sum(-1), stats.n)


def balanced_accuracy(stats: ConfusionStats) -> np.ndarray:
    """The mean of ``recall_c`` over the classes with a label in the slice (scikit-learn
    ``balanced_accuracy_score``; Brodersen et al. 2010)."""
    support = stats.count.sum(-1)
    present = support > 0
    recall = np.where(present, _true_positives(stats) / np.where(present, support, 1), 0.0)
    return divide(recall.sum(-1), present.sum(-1))


def macro_precision(stats: ConfusionStats) -> np.ndarray:
    """``(1 / C) sum_c precision_c`` over every declared class."""
    return class_precision(stats).mean(-1)


def macro_recall(stats: ConfusionStats) -> np.ndarray:
    """``(1 / C) sum_c recall_c`` over every declared class."""
    return class_recall(stats).mean(-1)


def macro_f1(stats: ConfusionStats) -> np.ndarray:
    """``(1 / C) sum_c F1_c`` over every declared class."""
    return class_f1(stats).mean(-1)


def micro_f1(stats: ConfusionStats) -> np.ndarray:
    """``2 sum TP / (2 sum TP + sum FP + sum FN)``; every label is a declared class, so it is
    ``sum TP / N``, the accuracy."""
    tp = _true_positives(stats).sum(-1)
    return divide(2 * tp, 2 * stats.n)


def weighted_f1(stats: ConfusionStats) -> np.ndarray:
    """``sum_c support_c F1_c / N`` with ``support_c`` the rows labeled ``c``."""
    support = stats.count.sum(-1)
    return divide((np.nan_to_num(class_f1(stats)) * support).sum(-1), support.sum(-1))


def log_loss(stats: ConfusionStats) -> np.ndarray:
    """``-(1 / N) sum_i log(clip(p_i,true, eps, 1 - eps))`` (scikit-learn ``log_loss``)."""
    return divide(stats.log_loss_sum, stats.n)


def top_k_accuracy(stats: ConfusionStats, k: int) -> np.ndarray:
    """The share of rows whose true class ranks among the ``k`` highest scores,
    ``sum_{r <= k} rank_count_r / N`` (scikit-learn ``top_k_accuracy_score``)."""
    return divide(stats.rank_count[..., :k].sum(-1), stats.n)


def _class_aucs(stats: ClassHistogram) -> np.ndarray:
    return roc_auc_from_histograms(stats.count[..., 0, :], stats.count[..., 1, :])


def roc_auc_ovr(stats: ClassHistogram) -> np.ndarray:
    """``(1 / C) sum_c AUC(class c vs rest)`` on class c's score (scikit-learn
    ``roc_auc_score(multi_class="ovr", average="macro")``; Provost & Domingos 2000)."""
    return _class_aucs(stats).mean(-1)


def roc_auc_ovr_bound(stats: ClassHistogram) -> np.ndarray:
    """The mean of the classes' binned-AUC bounds: ``|mean of errors| <= mean of bounds``."""
    return roc_auc_error_bound(stats.count[..., 0, :], stats.count[..., 1, :]).mean(-1)


def mcnemar(paired: MulticlassPairs) -> np.ndarray:
    """McNemar's exact test on the requests both versions classified (per slice group)."""
    return mcnemar_exact(paired.outcomes[:, 0], paired.outcomes[:, 1])


def _of_class(function, stats: ConfusionStats, cls: str) -> np.ndarray:
    return function(stats)[..., stats.classes.index(cls)]


# Per-class metric kinds: ``<kind>.<class>``.
_PER_CLASS = {
    "precision": (class_precision, "Precision", "TP_c / (TP_c + FP_c), 0 if nothing predicted c"),
    "recall": (class_recall, "Recall", "TP_c / (TP_c + FN_c), 0 if no label c"),
    "f1": (class_f1, "F1 score", "2TP_c / (2TP_c + FP_c + FN_c), 0 if undefined"),
}
PATTERNS = ("precision.<class>", "recall.<class>", "f1.<class>", "top_<k>_accuracy")
# Metrics that read the class scores (``predictions.class_scores`` required).
SCORE_METRICS = ("log_loss", "roc_auc_ovr")


@cache
def resolve(name: str) -> Metric | None:
    """The entry of a parametric name (``precision.<class>``, ``top_<k>_accuracy`` with
    k >= 2), or None. Whether the class is declared is the spec's check (:func:`check_spec`)."""
    match = _TOP_K.match(name)
    if match:
        k = int(match.group(1))
        if k < 2:
            return None
        return Metric(
            name,
            f"Top-{k} accuracy",
            CONFUSION,
            partial(top_k_accuracy, k=k),
            f"share of rows whose true class is among the {k} highest scores",
            True,
            "scikit-learn top_k_accuracy_score",
        )
    kind, dot, cls = name.partition(".")
    if dot and cls and kind in _PER_CLASS:
        function, title, formula = _PER_CLASS[kind]
        return Metric(
            name,
            f"{title} of class {cls}",
            CONFUSION,
            partial(_of_class, function, cls=cls),
            formula,
            True,
            "scikit-learn precision_recall_fscore_support (zero_division=0)",
        )
    return None


def _needs_scores(name: str) -> bool:
    return name in SCORE_METRICS or bool(_TOP_K.match(name))


def _declared(raw: dict[str, Any]) -> tuple[list[Any], bool]:
    predictions = raw.get("predictions") or {}
    scores = predictions.get("class_scores") if isinstance(predictions, dict) else None
    classes = raw.get("classes") or (list(scores) if isinstance(scores, dict) else [])
    return list(classes or []), bool(scores)


def default_metrics(raw: dict[str, Any]) -> list[str]:
    """Every fixed metric; the score metrics (and ``top_2_accuracy`` with 3+ classes) only
    when class scores are logged. Per-class metrics are listed by name in ``metrics``."""
    classes, scored = _declared(raw)
    names = [name for name in METRICS_BY_NAME if scored or name not in SCORE_METRICS]
    if scored and len(classes) >= 3:
        names.append("top_2_accuracy")
    return names


def check_spec(spec: "EvalSpec") -> None:
    """One sentence for a spec the task cannot evaluate: no class set, too many classes,
    class scores that do not cover the classes, score metrics without scores, a per-class
    metric naming an undeclared class."""
    scores = spec.predictions.class_scores
    if spec.classes is None and not scores:
        raise ValueError(
            f"classes: task {NAME!r} needs its class set: list it in 'classes', or give "
            "predictions.class_scores (one probability column per class)"
        )
    classes = list(classes_of(spec))
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes: a class is listed more than once ({classes})")
    if len(classes) < 2:
        raise ValueError(f"classes: at least 2 classes are needed, got {classes}")
    if len(classes) > MAX_CLASSES:
        raise ValueError(
            f"classes: {len(classes)} classes declared; task {NAME!r} takes at most "
            f"{MAX_CLASSES} (group the rare ones into one class in a 'query:')"
        )
    if scores and spec.classes is not None and set(scores) != set(classes):
        missing = [c for c in classes if c not in scores]
        extra = [c for c in scores if c not in classes]
        what = (
            f"has no column for class {', '.join(map(repr, missing))}"
            if missing
            else f"names class {', '.join(map(repr, extra))} that 'classes' does not list"
        )
        raise ValueError(
            f"predictions.class_scores: {what}; give one probability column per declared class"
        )
    for name in spec.metrics:
        if _needs_scores(name) and not scores:
            raise ValueError(
                f"metrics: {name!r} needs predictions.class_scores (one probability column "
                "per class)"
            )
        kind, dot, cls = name.partition(".")
        if dot and kind in _PER_CLASS and cls not in classes:
            close = difflib.get_close_matches(cls, classes, n=1)
            hint = f" (did you mean '{kind}.{close[0]}'?)" if close else ""
            raise ValueError(
                f"metrics: {name!r} names no declared class{hint}; classes: {', '.join(classes)}"
            )


def window_outputs(spec: "EvalSpec") -> list[tuple[str, str, str]]:
    """The class score columns, carried in the window as ``cs_<i>`` in class order."""
    classes = classes_of(spec)
    return [
        (f"predictions.class_scores.{cls}", column, f"cs_{i}")
        for i, (cls, column) in enumerate(zip(classes, score_columns(spec), strict=False))
    ]


def fingerprint_value(builder: "SqlBuilder") -> str:
    """The prediction, the label and each class score (to 1e-9, as the binary score)."""
    terms = ["COALESCE(prediction, '')", "COALESCE(label, '')"]
    terms += [
        "COALESCE("
        + builder.as_text(
            f"CAST(ROUND(CASE WHEN {name} >= 0 AND {name} <= 1 THEN {name} END "
            "* 1000000000) AS BIGINT)"
        )
        + ", '')"
        for _, _, name in window_outputs(builder.spec)
    ]
    return " || '|' || ".join(terms)


def row_counts(statistics: Any) -> RowCounts:
    """Labeled and unlabeled rows; a multiclass task has no positives (reported as 0)."""
    data: ConfusionBuckets = statistics.data[CONFUSION.name]
    labeled = CONFUSION.point(data).n
    return RowCounts(
        labeled=labeled, positives=np.zeros_like(labeled), unlabeled=data.unlabeled.sum(axis=2)
    )


CONFUSION_COLUMNS = ["slice", "model_version", "label", "predicted", "n"]


def confusion_table(statistics: Any) -> dict[str, pd.DataFrame]:
    """``confusion.parquet``: one row per (slice, model_version, label, predicted) with its
    labeled rows ``n``; cells with no row are left out (a class pair never seen)."""
    point = CONFUSION.point(statistics.data[CONFUSION.name])
    g, v, label, predicted = np.nonzero(point.count)
    classes = np.array(point.classes, dtype=object)
    frame = pd.DataFrame(
        {
            "slice": np.array([str(s) for s in statistics.slices], dtype=object)[g],
            "model_version": np.array(statistics.versions, dtype=object)[v],
            "label": classes[label],
            "predicted": classes[predicted],
            "n": point.count[g, v, label, predicted].astype(np.int64),
        },
        columns=CONFUSION_COLUMNS,
    )
    return {"confusion": frame}


# The most points of a one-vs-rest ROC line (C classes x slices x versions lines).
ROC_OVR_POINTS = 100


def curves(inputs: CurveInputs) -> pd.DataFrame:
    """``roc_ovr`` (``curves.parquet``; docs/curves.md): each class's one-vs-rest ROC points
    (``series`` the class) from the class-histogram family's fine equal-width bins merged
    into at most :data:`ROC_OVR_POINTS` runs of adjacent bins, one point per occupied run,
    ``threshold`` the run's lower edge (the point counts the rows whose class-``c`` score is
    at or above it as predicted ``c``); only when class scores are logged. The confusion
    matrix is ``confusion.parquet`` (not repeated here)."""
    stats = inputs.stats
    hist = CLASS_HISTOGRAM.point(stats.data[CLASS_HISTOGRAM.name])
    if not hist.count.any():  # no class scores: no histogram
        return pd.DataFrame()
    bins = hist.count.shape[-1]
    # Runs of adjacent fine bins, at most ROC_OVR_POINTS a line; each run's lower edge is a
    # fine edge, so its point stays exact for "score >= edge".
    starts = np.flatnonzero(
        np.diff(np.arange(bins) * min(bins, ROC_OVR_POINTS) // bins, prepend=-1)
    )
    count = np.add.reduceat(hist.count, starts, axis=-1)
    threshold = np.broadcast_to(starts / bins, (*count.shape[:2], len(starts)))
    parts = []
    for c, name in enumerate(hist.classes):
        negatives, positives = count[:, :, c, 0, :], count[:, :, c, 1, :]
        parts += roc_pr_curves(
            stats, negatives, positives, threshold, roc="roc_ovr", pr=None, series=name
        )
    return pd.concat(parts, ignore_index=True)


def statistics_query(builder: "SqlBuilder", window: "Window") -> str:
    return builder.multiclass_statistics(window)


def paired_query(builder: "SqlBuilder", window: "Window", baseline: str, candidate: str) -> str:
    return builder.multiclass_pairs(window, baseline, candidate)


def family_queries(builder: "SqlBuilder", window: "Window") -> dict[str, str]:
    """The class histograms' own query, with class scores (their result is the largest)."""
    if not score_columns(builder.spec):
        return {}
    return {CLASS_HISTOGRAM.name: builder.multiclass_class_histogram(window)}


SK = "scikit-learn"
METRICS = [
    Metric(
        "accuracy",
        "Accuracy",
        CONFUSION,
        accuracy,
        "sum_c M[c,c] / N",
        True,
        f"{SK} accuracy_score",
        paired_test=PairedTest("McNemar exact", mcnemar),
    ),
    Metric(
        "balanced_accuracy",
        "Balanced accuracy",
        CONFUSION,
        balanced_accuracy,
        "mean recall_c over classes with labels",
        True,
        "Brodersen et al. 2010; scikit-learn balanced_accuracy_score",
    ),
    Metric(
        "macro_precision",
        "Macro precision",
        CONFUSION,
        macro_precision,
        "mean_c TP_c / (TP_c + FP_c)",
        True,
        f"Sokolova & Lapalme 2009; {SK} precision_score(average='macro')",
    ),
    Metric(
        "macro_recall",
        "Macro recall",
        CONFUSION,
        macro_recall,
        "mean_c TP_c / (TP_c + FN_c)",
        True,
        f"Sokolova & Lapalme 2009; {SK} recall_score(average='macro')",
    ),
    Metric(
        "macro_f1",
        "Macro F1",
        CONFUSION,
        macro_f1,
        "mean_c 2TP_c / (2TP_c + FP_c + FN_c)",
        True,
        f"Sokolova & Lapalme 2009; {SK} f1_score(average='macro')",
    ),
    Metric(
        "micro_f1",
        "Micro F1",
        CONFUSION,
        micro_f1,
        "2 sum TP / (2 sum TP + sum FP + sum FN)",
        True,
        f"Sokolova & Lapalme 2009; {SK} f1_score(average='micro')",
    ),
    Metric(
        "weighted_f1",
        "Weighted F1",
        CONFUSION,
        weighted_f1,
        "sum_c support_c F1_c / N",
        True,
        f"{SK} f1_score(average='weighted')",
    ),
    Metric(
        "log_loss",
        "Log loss",
        CONFUSION,
        log_loss,
        "-mean log(clip(p_true, eps, 1 - eps))",
        False,
        f"{SK} log_loss; Bishop 2006, p. 209",
    ),
    Metric(
        "roc_auc_ovr",
        "ROC AUC (one-vs-rest, macro)",
        CLASS_HISTOGRAM,
        roc_auc_ovr,
        "mean_c AUC(c vs rest)",
        True,
        f"Provost & Domingos 2000; {SK} roc_auc_score(multi_class='ovr')",
        error_bound=roc_auc_ovr_bound,
    ),
]
METRICS_BY_NAME = {metric.name: metric for metric in METRICS}

MULTICLASS = Task(
    name=NAME,
    families=(CONFUSION, CLASS_HISTOGRAM),
    metrics=METRICS_BY_NAME,
    rows=row_counts,
    parse_paired=parse_pairs,
    output="prediction",
    statistics_query=statistics_query,
    paired_query=paired_query,
    family_queries=family_queries,
    fingerprint_value=fingerprint_value,
    output_types=frozenset({"text", "integer"}),
    output_wording="a text or integer column holding one of the declared classes",
    label_types=frozenset({"text", "integer"}),
    label_wording="a text or integer column holding one of the declared classes",
    resolve=resolve,
    patterns=PATTERNS,
    default_metrics=default_metrics,
    check_spec=check_spec,
    window_outputs=window_outputs,
    categorical=True,
    tables=confusion_table,
    curves=curves,
)
