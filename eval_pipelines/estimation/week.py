"""The label-free estimation of one evaluated week, by the spec's task's runner."""

from eval_pipelines.estimation import multiclass_week, run
from eval_pipelines.estimation.run import Estimation
from eval_pipelines.spec import EvalSpec
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.stats.parse import SliceKey
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import Window

# task name -> its runner (a task in ``ESTIMABLE`` has one here).
RUNNERS = {
    "binary_classification": run.estimate,
    "multiclass_classification": multiclass_week.estimate,
}


def estimate(
    spec: EvalSpec,
    window: Window,
    warehouse: Warehouse,
    builder: SqlBuilder,
    slices: list[SliceKey],
    versions: list[str],
) -> Estimation:
    """The estimated metrics of every slice and version of the evaluated week."""
    return RUNNERS[spec.task](spec, window, warehouse, builder, slices, versions)
