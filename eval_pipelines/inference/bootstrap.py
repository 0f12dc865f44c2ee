"""The two bootstraps, each written once against the statistic-family interface.

A family names its scheme (``Family.bootstrap``); every metric over that family gets its
interval, its paired delta's interval and its test from the scheme, so nothing here or in
:mod:`eval_pipelines.evaluation` knows a metric's name:

* :data:`BUCKET_BOOTSTRAP` (families kept per resample bucket: ``reweight``): one set of
  multinomial bucket weights for every slice and version, so version differences are paired
  through the shared buckets; intervals scaled by :func:`deviation_scale`, tests on Student's
  t with K - 1 df (:mod:`eval_pipelines.inference.resampling` explains both).
* :data:`CELL_BOOTSTRAP` (families of cells: ``coarsen``, ``redraw``): a Poisson draw per
  cell of each version's coarse statistic; deviations are added to the fine point estimate.
  Deltas are paired through joint cells of both versions (``joint_point``, ``redraw_joint``)
  when the paired aggregate is there, else compared as independent (Wald, conservative).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from eval_pipelines.inference.resampling import (
    bucket_standard_error,
    bucket_weights,
    deviation_scale,
    deviations,
    standard_error,
)
from eval_pipelines.inference.significance import wald_p_value

if TYPE_CHECKING:
    from eval_pipelines.spec import EvalSpec
    from eval_pipelines.stats.base import BucketFamily, CellFamily

# Slice groups whose cell replicates are drawn together (bounds memory to ~tens of MB).
GROUPS_PER_DRAW = 32

MetricFunction = Callable[[Any], np.ndarray]


@dataclass
class Delta:
    """A metric's candidate - baseline comparison per slice group: replicate deviations
    ``[g, B]``, two-sided p-values ``[g]``, the test's name, and whether it counts paired
    requests (its ``n``) rather than each version's labeled rows."""

    deviation: np.ndarray
    p_value: np.ndarray
    test: str
    on_pairs: bool = False


class Bootstrap(Protocol):
    # The test's name in comparison.parquet, and how the report says the rows were resampled.
    method: str
    resampled: str
    # The delta's test in the metric catalogue's words (a choice made at run time included).
    comparison: str

    def deviations(
        self, family: Any, data: Any, functions: dict[str, MetricFunction], spec: "EvalSpec"
    ) -> dict[str, np.ndarray]:
        """Scaled replicate deviations ``[g, v, B]`` of each function of the family."""
        ...

    def deltas(
        self,
        family: Any,
        functions: dict[str, MetricFunction],
        delta: dict[str, np.ndarray],
        deviation: dict[str, np.ndarray],
        versions: tuple[int, int],
        paired: Any,
        spec: "EvalSpec",
    ) -> dict[str, Delta]:
        """Each function's paired candidate - baseline test (``versions``: their indices)."""
        ...


def _chunks(groups: int) -> list[np.ndarray]:
    return np.array_split(np.arange(groups), max(1, groups // GROUPS_PER_DRAW))


class BucketBootstrap:
    method = "paired bucket bootstrap (t, K - 1 df)"
    resampled = "over {buckets} resample buckets (paired across versions)"
    comparison = method

    def deviations(
        self,
        family: "BucketFamily",
        data: Any,
        functions: dict[str, MetricFunction],
        spec: "EvalSpec",
    ) -> dict[str, np.ndarray]:
        conf = spec.confidence
        buckets = family.buckets(data)
        point = family.point(data)
        replicates = family.reweight(data, bucket_weights(buckets, conf.replicates, conf.seed))
        scale = deviation_scale(buckets, conf.level)
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                name: deviations(function(replicates), function(point), scale)
                for name, function in functions.items()
            }

    def deltas(
        self,
        family: "BucketFamily",
        functions: dict[str, MetricFunction],
        delta: dict[str, np.ndarray],
        deviation: dict[str, np.ndarray],
        versions: tuple[int, int],
        paired: Any,
        spec: "EvalSpec",
    ) -> dict[str, Delta]:
        """Both versions' replicates share the bucket weights: their difference is paired."""
        b, c = versions
        K, level = spec.confidence.buckets, spec.confidence.level
        out = {}
        for name in functions:
            dev = deviation[name][:, c] - deviation[name][:, b]
            # Student's t on K - 1 df, whatever the interval level
            p = wald_p_value(delta[name], bucket_standard_error(dev, K, level), df=K - 1)
            out[name] = Delta(dev, p, self.method)
        return out


class CellBootstrap:
    method = "bootstrap of each version's histogram (Wald; conservative when paired)"
    paired_method = "paired cell bootstrap (Wald)"
    resampled = "over histogram cells (deltas paired through joint cells of both versions)"
    comparison = f"{paired_method} on requests both versions scored, else {method}"

    def deviations(
        self,
        family: "CellFamily",
        data: Any,
        functions: dict[str, MetricFunction],
        spec: "EvalSpec",
    ) -> dict[str, np.ndarray]:
        conf = spec.confidence
        coarse = family.coarsen(data, spec)
        out = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            coarse_point = {name: function(coarse) for name, function in functions.items()}
            if not functions:
                return out
            groups = next(iter(coarse_point.values())).shape[0]
            for name, value in coarse_point.items():
                out[name] = np.empty((*value.shape, conf.replicates))
            rng = np.random.default_rng([conf.seed, 1])
            for chunk in _chunks(groups):
                drawn = family.redraw(coarse, chunk, conf.replicates, rng)  # [g, v, B, ...]
                for name, function in functions.items():
                    out[name][chunk] = deviations(function(drawn), coarse_point[name][chunk])
        return out

    def deltas(
        self,
        family: "CellFamily",
        functions: dict[str, MetricFunction],
        delta: dict[str, np.ndarray],
        deviation: dict[str, np.ndarray],
        versions: tuple[int, int],
        paired: Any,
        spec: "EvalSpec",
    ) -> dict[str, Delta]:
        """Paired through joint cells when the paired query ran, else independent versions."""
        b, c = versions
        if paired is None:
            out = {}
            for name in functions:
                dev = deviation[name][:, c] - deviation[name][:, b]
                out[name] = Delta(dev, wald_p_value(delta[name], standard_error(dev)), self.method)
            return out
        paired_deviation = self._paired_deviations(family, functions, paired, spec)
        return {
            name: Delta(
                dev,
                wald_p_value(delta[name], standard_error(dev)),
                self.paired_method,
                on_pairs=True,
            )
            for name, dev in paired_deviation.items()
        }

    @staticmethod
    def _paired_deviations(
        family: "CellFamily", functions: dict[str, MetricFunction], paired: Any, spec: "EvalSpec"
    ) -> dict[str, np.ndarray]:
        """Deviations ``[g, B]`` of candidate - baseline, one Poisson draw per joint cell:
        the Poisson bootstrap of requests, on ``confidence.paired_bins`` bins per version."""
        conf = spec.confidence
        rng = np.random.default_rng([conf.seed, 2])
        with np.errstate(invalid="ignore", divide="ignore"):
            point_b, point_c = family.joint_point(paired, spec)
            point = {name: f(point_c) - f(point_b) for name, f in functions.items()}
            if not point:
                return {}
            groups = next(iter(point.values())).shape[0]
            out = {name: np.empty((groups, conf.replicates)) for name in functions}
            for chunk in _chunks(groups):
                drawn_b, drawn_c = family.redraw_joint(paired, chunk, conf.replicates, rng, spec)
                for name, f in functions.items():
                    out[name][chunk] = deviations(f(drawn_c) - f(drawn_b), point[name][chunk])
        return out


class IndependentCellBootstrap(CellBootstrap):
    """The cell bootstrap for a family without joint cells of both versions (the regression
    error histogram): deltas always compare the versions as independent (Wald, conservative
    when the rows are paired), whatever the task's paired query returned."""

    resampled = "over histogram cells (versions compared as independent)"
    comparison = CellBootstrap.method

    def deltas(
        self,
        family: "CellFamily",
        functions: dict[str, MetricFunction],
        delta: dict[str, np.ndarray],
        deviation: dict[str, np.ndarray],
        versions: tuple[int, int],
        paired: Any,
        spec: "EvalSpec",
    ) -> dict[str, Delta]:
        return super().deltas(family, functions, delta, deviation, versions, None, spec)


BUCKET_BOOTSTRAP = BucketBootstrap()
CELL_BOOTSTRAP = CellBootstrap()
INDEPENDENT_CELL_BOOTSTRAP = IndependentCellBootstrap()
