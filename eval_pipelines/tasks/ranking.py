"""The ranking task: metrics of ranked lists, averaged over the lists with a relevant item.

One prediction row per (list, item) as served: ``predictions.list_id`` names the list,
``predictions.score`` ranks it (higher first; ties broken by the item's row id,
``predictions.id``, ascending), and the label is the item's graded relevance ``>= 0``, joined
on the row id. An item without a (matured) label has gain 0: implicit feedback. ``R`` is the
number of relevant items (gain ``> 0``) of a list. At each cutoff ``k`` of ``ranking.k``:

* ``ndcg@k``: ``DCG@k / IDCG@k`` with linear gain and ``1 / log2(i + 1)`` discount at
  position ``i``, scikit-learn's ``ndcg_score(y_true, y_score, k=k)`` on untied scores. For
  tied scores scikit-learn averages the gains of a tied group (``ignore_ties=False``); here
  ties are broken by the item id, so every metric is that of the order actually served;
* ``map@k``: ``sum over relevant positions i <= k of precision@i``, divided by ``min(k, R)``;
* ``recall@k``: relevant items in the top k divided by ``R``;
* ``hit_rate@k``: 1 when any relevant item is in the top k, else 0;
* ``mrr``: ``1 / rank`` of the first relevant item (not cut at k).

Each is the mean of its per-list value over the lists with ``R >= 1`` (their count is the
metric's ``n``); lists with ``R = 0`` are counted apart (``coverage.parquet``'s labeled lists
minus ``n``). scikit-learn averages them into ``ndcg_score`` as 0 instead. Counts are of
lists: a list is labeled when any of its items has a matured label, so label coverage is the
share of lists with any label. Names at any ``k`` (``ndcg@5``) are resolved by the task
(:func:`metric_named`); the warehouse computes every k of ``ranking.k`` and of the names.
"""

from functools import cache, partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from eval_pipelines.curves import CurveInputs, points
from eval_pipelines.stats.ranking import (
    CUTOFF_METRIC,
    DEFAULT_CUTOFFS,
    RANKING_FAMILY,
    RankingBuckets,
    RankingSums,
    cutoffs,
    parse_pairs,
)
from eval_pipelines.tasks.base import Metric, RowCounts, Task, divide

if TYPE_CHECKING:
    from eval_pipelines.sqlbuild import SqlBuilder
    from eval_pipelines.windows import Window

# The largest cutoff a spec may name (a list deeper than this is rarely served or judged).
MAX_CUTOFF = 1000

# metric kind -> (its per-list sum's name, title, formula, reference)
KINDS = {
    "ndcg": (
        "ndcg",
        "NDCG@{k}",
        "mean over lists of DCG@{k} / IDCG@{k} (linear gain, log2 discount)",
        "scikit-learn ndcg_score(k={k}); Järvelin & Kekäläinen 2002",
    ),
    "map": (
        "ap",
        "MAP@{k}",
        "mean over lists of sum_(relevant i <= {k}) precision@i / min({k}, R)",
        "Manning et al., Introduction to Information Retrieval, 8.4",
    ),
    "recall": (
        "recall",
        "Recall@{k}",
        "mean over lists of relevant in top {k} / R",
        "Manning et al., Introduction to Information Retrieval, 8.4 (recall at k)",
    ),
    "hit_rate": (
        "hit",
        "Hit rate@{k}",
        "share of lists with a relevant item in top {k}",
        "Deshpande & Karypis 2004, hit rate (HR@{k})",
    ),
}


def lists_averaged(stats: RankingSums) -> np.ndarray:
    """Every ranking metric's ``n``: the lists with at least one relevant item."""
    return stats.field("n")


def mean_over_lists(stats: RankingSums, field: str) -> np.ndarray:
    """The sum of a per-list value over the lists with ``R >= 1``, divided by their count."""
    return divide(stats.field(field), stats.field("n"))


def mrr(stats: RankingSums) -> np.ndarray:
    """Mean reciprocal rank of the first relevant item (not cut at any k)."""
    return mean_over_lists(stats, "rr")


# How messages list the metrics at any cutoff.
PATTERNS = tuple(f"{kind}@<k>" for kind in KINDS)


@cache
def metric_named(name: str) -> Metric | None:
    """The entry of a metric at a cutoff (``ndcg@10``), or None when ``name`` is not one."""
    match = CUTOFF_METRIC.match(name)
    if match is None or int(match.group(2)) > MAX_CUTOFF:
        return None
    kind, k = match.group(1), int(match.group(2))
    field, title, formula, reference = KINDS[kind]
    return Metric(
        name,
        title.format(k=k),
        RANKING_FAMILY,
        partial(mean_over_lists, field=f"{field}_{k}"),
        formula.format(k=k),
        True,
        reference.format(k=k),
        count=lists_averaged,
    )


def default_metrics(data: dict[str, Any]) -> list[str]:
    """Each metric at each k of the raw spec's ``ranking.k`` (default [10]), then ``mrr``."""
    ranking = data.get("ranking")
    ks = ranking.get("k") if isinstance(ranking, dict) else None
    ks = ks if isinstance(ks, list) and ks else list(DEFAULT_CUTOFFS)
    return [f"{kind}@{k}" for k in ks for kind in KINDS] + ["mrr"]


def row_counts(statistics: Any) -> RowCounts:
    """Lists, not rows: labeled lists (any matured label), lists with a relevant item (the
    ``positives``, each metric's ``n``) and lists without a label."""
    data: RankingBuckets = statistics.data[RANKING_FAMILY.name]
    point = RANKING_FAMILY.point(data)
    return RowCounts(
        labeled=point.field("n_labeled"),
        positives=point.field("n"),
        unlabeled=data.unlabeled.sum(axis=2),
    )


def statistics_query(builder: "SqlBuilder", window: "Window") -> str:
    return builder.ranking_statistics(window)


def paired_query(builder: "SqlBuilder", window: "Window", baseline: str, candidate: str) -> str:
    return builder.ranking_pairs(window, baseline, candidate)


DEFAULT_METRICS = default_metrics({})
METRICS = [metric_named(name) for name in DEFAULT_METRICS[:-1]] + [
    Metric(
        "mrr",
        "Mean reciprocal rank",
        RANKING_FAMILY,
        mrr,
        "mean over lists of 1 / rank of the first relevant item",
        True,
        "Voorhees, TREC-8 QA track, 1999",
        count=lists_averaged,
    )
]


def _rounded(builder: "SqlBuilder", column: str) -> str:
    """A number's term of the fingerprint: to 1e-6 as an integer (the same text on every
    engine), empty beyond 1e9 in size or NULL."""
    rounded = builder.as_text(
        f"CAST(ROUND(CASE WHEN {column} >= -1e9 AND {column} <= 1e9 THEN "
        f"{column} END * 1000000) AS BIGINT)"
    )
    return f"COALESCE({rounded}, '')"


def fingerprint_value(builder: "SqlBuilder") -> str:
    """The list id, the score and the label."""
    return " || '|' || ".join(
        [
            f"COALESCE({builder.as_text('list_id')}, '')",
            _rounded(builder, "score"),
            _rounded(builder, "label"),
        ]
    )


def curves(inputs: CurveInputs) -> pd.DataFrame:
    """``metric_at_k`` (``curves.parquet``; docs/curves.md): NDCG, MAP, recall and hit rate
    (``series``) at every cutoff the warehouse computed (``x`` = k: 1 to the largest of
    ``ranking.k``, at most 50, and every k of ``ranking.k`` and of the metric names), each
    the mean of its per-list value over the lists with a relevant item (``n``), from the
    family's exact point sums, as the metrics are."""
    stats = inputs.stats
    point: RankingSums = RANKING_FAMILY.point(stats.data[RANKING_FAMILY.name])
    ks = np.array(cutoffs(inputs.spec))
    lists = point.field("n")[..., None]
    parts = []
    for metric, (field, *_) in KINDS.items():
        sums = np.stack([point.field(f"{field}_{k}") for k in ks], axis=-1)
        parts.append(
            points(
                stats,
                "metric_at_k",
                np.broadcast_to(lists > 0, sums.shape),
                metric,
                x=ks.astype(float),
                y=divide(sums, lists),
                n=lists,
            )
        )
    return pd.concat(parts, ignore_index=True)


RANKING = Task(
    name="ranking",
    families=(RANKING_FAMILY,),
    metrics={metric.name: metric for metric in METRICS if metric is not None},
    rows=row_counts,
    parse_paired=parse_pairs,
    output="score",
    statistics_query=statistics_query,
    paired_query=paired_query,
    fingerprint_value=fingerprint_value,
    output_types=frozenset({"integer", "decimal", "float"}),
    output_wording="a numeric column (the ranking score, higher first)",
    label_types=frozenset({"integer", "decimal", "float", "boolean"}),
    label_wording="a numeric column (the graded relevance, 0 or more) or BOOLEAN",
    window_columns=("list_id",),
    resolve=metric_named,
    patterns=PATTERNS,
    default_metrics=default_metrics,
    coverage_unit="lists",
    count_unit="lists with a relevant item",
    row_label_coverage=False,
    curves=curves,
)
