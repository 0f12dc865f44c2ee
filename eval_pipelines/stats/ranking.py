"""The ranking task's statistic family, computed by ``sql/ranking_statistics.sql``.

``ranking``: the warehouse ranks each list's items with window functions (position by score,
descending, ties by item id; the ideal order by gain), computes each list's values
(``sql/ranking_lists.sql``), and sums them per slice, version and resample bucket ``k``:

* ``n``: lists with at least one relevant item (``R >= 1``), the lists every metric averages;
* ``n_labeled`` / ``n_unlabeled``: lists with / without any matured label (label coverage);
* at each cutoff ``c``: the sums of the per-list NDCG@c (``ndcg_c``), average precision@c
  (``ap_c``), recall@c (``recall_c``) and the lists with a hit in the top c (``hit_c``);
* ``rr``: the sum of the reciprocal rank of each list's first relevant item.

Every ranking metric is a ratio of these sums, so each is exact and gets the paired bucket
bootstrap: a list's bucket is a hash of its list id, the same for both versions.
"""

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from eval_pipelines.inference.bootstrap import BUCKET_BOOTSTRAP
from eval_pipelines.stats.base import RowIndex, Rows, accumulate, column

if TYPE_CHECKING:
    from eval_pipelines.spec import EvalSpec

# The per-cutoff sums; ``{kind}_{c}`` in the aggregate's columns.
CUTOFF_FIELDS = ("ndcg", "ap", "recall", "hit")
# A metric name at a cutoff: ``ndcg@10``.
CUTOFF_METRIC = re.compile(r"^(ndcg|map|recall|hit_rate)@([1-9][0-9]*)$")
DEFAULT_CUTOFFS = (10,)
# The deepest k of the metric@k curves: every k up to it costs 4 sums per list.
CURVE_MAX_K = 50


def cutoffs(spec: "EvalSpec") -> tuple[int, ...]:
    """The cutoffs the warehouse computes: ``ranking.k``, any k a metric name carries, and
    every k from 1 to the largest of ``ranking.k`` (at most :data:`CURVE_MAX_K`): the
    metric@k curves of ``curves.parquet`` read them from the same sums."""
    ks = set(spec.ranking.k if spec.ranking is not None else DEFAULT_CUTOFFS)
    ks |= set(range(1, min(max(ks), CURVE_MAX_K) + 1))
    for name in spec.metrics:
        match = CUTOFF_METRIC.match(name)
        if match:
            ks.add(int(match.group(2)))
    return tuple(sorted(ks))


def field_names(ks: tuple[int, ...]) -> tuple[str, ...]:
    """The aggregate's sum columns, in the order of :attr:`RankingSums.sums`' last axis."""
    return ("n", "n_labeled", "rr", *(f"{kind}_{k}" for k in ks for kind in CUTOFF_FIELDS))


@dataclass(frozen=True)
class RankingSums:
    """The sums of :func:`field_names` on the last axis of ``sums[..., F]``, leading axes kept."""

    sums: np.ndarray
    names: tuple[str, ...]

    def field(self, name: str) -> np.ndarray:
        return self.sums[..., self.names.index(name)]


@dataclass(frozen=True)
class RankingBuckets:
    """The family as parsed: ``sums[g, v, k, F]`` and unlabeled lists ``unlabeled[g, v, k]``."""

    sums: np.ndarray
    unlabeled: np.ndarray
    names: tuple[str, ...]


@dataclass(frozen=True)
class RankingPairs:
    """Lists with a relevant item that both versions ranked, per slice group (``pairs[g]``)."""

    pairs: np.ndarray


class RankingFamily:
    """Sums of per-list values per resample bucket: the bucket bootstrap's family."""

    name = "ranking"
    bootstrap = BUCKET_BOOTSTRAP

    def parse(self, table: Rows, index: RowIndex, spec: "EvalSpec") -> RankingBuckets:
        G, V, K = index.groups, index.versions, spec.confidence.buckets
        names = field_names(cutoffs(spec))
        kept = index.g >= 0
        cell = (index.g[kept], index.v[kept], column(table, "bucket")[kept])
        sums = np.stack(
            [accumulate((G, V, K), cell, column(table, f, float)[kept]) for f in names], axis=-1
        )
        unlabeled = accumulate((G, V, K), cell, column(table, "n_unlabeled", float)[kept])
        return RankingBuckets(sums=sums, unlabeled=unlabeled, names=names)

    def point(self, data: RankingBuckets) -> RankingSums:
        """Every slice and version on all lists: axes ``[g, v, F]``."""
        return RankingSums(data.sums.sum(axis=2), data.names)

    def buckets(self, data: RankingBuckets) -> int:
        return data.sums.shape[2]

    def reweight(self, data: RankingBuckets, weights: np.ndarray) -> RankingSums:
        """Bucket-bootstrap replicates, axes ``[g, v, B, F]``, for ``weights[B, K]`` (the same
        weights for every slice and version: a list's bucket pairs its two versions)."""
        g, v, k, f = data.sums.shape
        flat = data.sums.reshape(g * v, k, f)
        return RankingSums(np.matmul(weights, flat).reshape(g, v, weights.shape[0], f), data.names)

    def cells(self, data: RankingBuckets) -> int:
        return int(data.sums.size)


RANKING_FAMILY = RankingFamily()


def parse_pairs(table: pa.Table, g: np.ndarray, spec: "EvalSpec", groups: int) -> RankingPairs:
    """The paired query's rows (``g``: each row's slice group, -1 for none) as pair counts."""
    keep = g >= 0
    return RankingPairs(accumulate((groups,), (g[keep],), column(table, "n", float)[keep]))
