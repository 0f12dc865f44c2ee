"""Tasks and the metric registry keyed by (task, metric).

A :class:`Task` names the statistic families its aggregate query returns, its metrics and
the counts every output reports (labeled rows, positives, rows still unlabeled). Each
:class:`Metric` is a pure numpy function over the point statistic of one named family, with
its formula, direction, reference and (through its family's bootstrap) its interval method.
Everything the spec validates (task names, metric names and "did you mean" hints, the default
``metrics`` list), the gates' directions and the report's titles are read from here, so a new
metric is one function, one :class:`Metric` entry in its task and its test.
"""

import difflib
from typing import TYPE_CHECKING

from eval_pipelines.tasks.base import Metric, Task
from eval_pipelines.tasks.binary import BINARY
from eval_pipelines.tasks.multiclass import MULTICLASS
from eval_pipelines.tasks.ranking import RANKING
from eval_pipelines.tasks.regression import REGRESSION

if TYPE_CHECKING:
    from eval_pipelines.spec import EvalSpec

DEFAULT_TASK = "binary_classification"
TASKS: dict[str, Task] = {task.name: task for task in [BINARY, MULTICLASS, REGRESSION, RANKING]}


def task_named(name: str) -> Task:
    """The task called ``name``; one sentence for an unknown name."""
    if name in TASKS:
        return TASKS[name]
    close = difflib.get_close_matches(name, TASKS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown task {name!r}{hint}; tasks: {', '.join(TASKS)}")


def metric_of(task: str, name: str) -> Metric:
    """The registry entry for ``(task, name)``; one sentence on an unsupported pair."""
    return task_named(task).metric(name)


def known_metric(name: str) -> bool:
    """Whether any task's registry resolves ``name`` (listed or parametric, ``ndcg@5``)."""
    for task in TASKS.values():
        try:
            task.metric(name)
        except ValueError:
            continue
        return True
    return False


def task_of(spec: "EvalSpec") -> Task:
    return task_named(spec.task)
