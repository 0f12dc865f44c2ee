"""The metric catalogue: every metric of every task, read from the registry.

One row per metric a spec may name: its title, formula, direction, how its interval and its
candidate - baseline test are computed (from its family's bootstrap, :class:`Metric`'s
``interval_method`` and ``comparison_test``), its reference, whether a spec without a
``metrics`` list evaluates it, and the ``predictions`` key it reads besides the output.
Parametric names (``precision.<class>``, ``top_<k>_accuracy``, ``ndcg@<k>``) are listed once,
in the form ``Task.patterns`` gives; the label-free ``estimated_<metric>`` rows of a task
with an estimator follow its metrics. ``eval-pipelines metrics`` prints it and
``docs/metrics.md`` is its Markdown (:data:`REGENERATE`; a test fails when that file is stale).
Nothing here is written by hand per metric, so the catalogue cannot drift from the code.
"""

import json
import re
from dataclasses import asdict, dataclass

from eval_pipelines.estimation import (
    ESTIMABLE,
    ESTIMATE_FORMULA,
    ESTIMATE_INTERVAL,
    ESTIMATE_REFERENCE,
    ESTIMATE_TEST,
    estimated_name,
    spec_problem,
)
from eval_pipelines.spec import PredictionsSpec, Source, _task_metrics
from eval_pipelines.tasks import TASKS, Task
from eval_pipelines.tasks.base import Metric

FORMATS = ("text", "markdown", "json")
REGENERATE = "eval-pipelines metrics --format markdown > docs/metrics.md"

# A parametric name's placeholder (``<k>``, ``<class>``) and a value that resolves for any
# task while appearing in no title, formula or reference (so it can be put back).
_PLACEHOLDER = re.compile(r"<\w+>")
_SAMPLE = "97"
# The optional ``predictions`` keys a metric may read besides the output, each with a value
# that turns it on when probing the task's default list (three classes for class scores).
_OPTIONAL_INPUTS = {
    name: {"a": "p_a", "b": "p_b", "c": "p_c"} if name == "class_scores" else "x"
    for name, field in PredictionsSpec.model_fields.items()
    if field.default is None and name not in Source.model_fields
}


@dataclass(frozen=True)
class Entry:
    """One catalogue row (the JSON output's keys)."""

    task: str
    metric: str
    title: str
    formula: str
    direction: str
    interval: str
    test: str
    reference: str
    family: str
    default: str
    requires: str
    estimated: bool = False


def _pattern_metric(task: Task, pattern: str) -> Metric:
    """The entry of a parametric name with its placeholders kept in its words."""
    found = task.resolve(pattern) if task.resolve is not None else None
    if found is not None:  # the placeholder is a valid value itself (``<class>``)
        return found
    placeholders = _PLACEHOLDER.findall(pattern)
    sample = _PLACEHOLDER.sub(_SAMPLE, pattern)
    found = task.metric(sample)
    back = placeholders[0] if len(placeholders) == 1 else "<n>"
    return Metric(
        pattern,
        found.title.replace(_SAMPLE, back),
        found.family,
        found.compute,
        found.formula.replace(_SAMPLE, back),
        found.higher_is_better,
        found.reference.replace(_SAMPLE, back),
        paired_test=found.paired_test,
        toward_zero=found.toward_zero,
        requires=found.requires,
    )


def _matches(pattern: str, name: str) -> bool:
    parts = _PLACEHOLDER.split(pattern)
    return re.fullmatch(".+".join(re.escape(part) for part in parts), name) is not None


def _defaults(task: Task) -> tuple[list[str], dict[str, list[str]]]:
    """The default ``metrics`` of a spec of ``task`` giving no optional input, and the names
    each optional ``predictions`` key adds to it (the spec's own rule, probed)."""
    bare = _task_metrics({"task": task.name, "predictions": {}})
    added = {}
    for key, value in _OPTIONAL_INPUTS.items():
        names = _task_metrics({"task": task.name, "predictions": {key: value}})
        added[key] = [name for name in names if name not in bare]
    return bare, added


def _default_and_requires(
    names: list[str], metric: Metric, bare: list[str], added: dict[str, list[str]]
) -> tuple[str, str]:
    """How the default list holds ``names`` (a metric, or the names of a pattern), and the
    ``predictions`` key the metric needs."""
    keys = [key for key, extra in added.items() if any(name in extra for name in names)]
    requires = metric.requires or (keys[0] if keys else None)
    listed = [name for name in names if name in bare]
    pattern = names != [metric.name]
    if listed:
        default = f"yes: {', '.join(listed)}" if pattern else "yes"
    elif keys:
        extra = [name for name in names if name in added[keys[0]]]
        default = f"with predictions.{keys[0]}" + (f": {', '.join(extra)}" if pattern else "")
    else:
        default = "no: name it in metrics"
    return default, f"predictions.{requires}" if requires else ""


def _entry(task: Task, metric: Metric, default: str, requires: str) -> Entry:
    return Entry(
        task=task.name,
        metric=metric.name,
        title=metric.title,
        formula=metric.formula,
        direction=metric.direction,
        interval=metric.interval_method,
        test=metric.comparison_test,
        reference=metric.reference,
        family=metric.family.name,
        default=default,
        requires=requires,
    )


def task_catalogue(task: Task) -> list[Entry]:
    """The rows of one task: its fixed metrics, its patterns, then its estimated metrics."""
    bare, added = _defaults(task)
    every_default = [*bare, *(name for names in added.values() for name in names)]
    rows = []
    for name, metric in task.metrics.items():
        if any(_matches(pattern, name) for pattern in task.patterns):
            continue  # an instance of a pattern (ranking's ``ndcg@10``): listed as the pattern
        rows.append(_entry(task, metric, *_default_and_requires([name], metric, bare, added)))
    for pattern in task.patterns:
        metric = _pattern_metric(task, pattern)
        names = [name for name in every_default if _matches(pattern, name)] or [pattern]
        rows.append(_entry(task, metric, *_default_and_requires(names, metric, bare, added)))
    class_scores = spec_problem(task.name, class_scores=False) is not None
    for name in ESTIMABLE.get(task.name, ()):
        metric = task.metric(name)
        needs = ["estimation"] + (["predictions.class_scores"] if class_scores else [])
        rows.append(
            Entry(
                task=task.name,
                metric=estimated_name(name),
                title=f"Estimated {metric.title} (label-free)",
                formula=ESTIMATE_FORMULA.format(formula=metric.formula),
                direction=metric.direction,
                interval=ESTIMATE_INTERVAL,
                test=ESTIMATE_TEST,
                reference=ESTIMATE_REFERENCE,
                family="estimation",
                default=f"with estimation, when {name} is in metrics",
                requires=", ".join(needs),
                estimated=True,
            )
        )
    return rows


def catalogue(task: str | None = None) -> list[Entry]:
    """Every row of ``task`` (a name from :data:`~eval_pipelines.tasks.TASKS`), or of all."""
    chosen = [TASKS[task]] if task is not None else list(TASKS.values())
    return [entry for found in chosen for entry in task_catalogue(found)]


# ------------------------------------------------------------------------------ rendering
TEXT_FIELDS = ("title", "formula", "direction", "interval", "test", "default", "requires")


def render_text(entries: list[Entry]) -> str:
    lines: list[str] = []
    for task in dict.fromkeys(entry.task for entry in entries):
        lines += [task, "=" * len(task)]
        for entry in (e for e in entries if e.task == task):
            lines.append(entry.metric)
            for name in (*TEXT_FIELDS, "reference"):
                value = getattr(entry, name)
                if value:
                    lines.append(f"    {name + ':':<11}{value}")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """A table cell: pipes escaped, and ``<k>`` kept visible (not read as an HTML tag)."""
    return text.replace("|", "\\|").replace("<", "&lt;") or "-"


MARKDOWN_INTRO = f"""\
# Metric catalogue

Every metric of every task, generated from the registry (`eval_pipelines/tasks/`,
`eval_pipelines/catalogue.py`); do not edit this file by hand. Regenerate it with

    {REGENERATE}

(`tests/test_catalogue.py` fails when it is stale). `eval-pipelines metrics --task TASK`
prints one task, `--format json` the same rows as JSON.

Columns: **interval** is how the metric's confidence interval is computed (its statistic
family's bootstrap; K = `confidence.buckets`); **test** is the test of a candidate - baseline
delta in `comparison.parquet`; **default** says whether a spec without a `metrics` list
evaluates it; **requires** is the spec key it reads besides the model's output. A name with
`<k>` or `<class>` stands for each cutoff or class (`ndcg@5`, `precision.fraud`).
`estimated_<metric>` rows are label-free estimates (docs/estimation.md).
"""


def render_markdown(entries: list[Entry]) -> str:
    parts = [MARKDOWN_INTRO]
    for task in dict.fromkeys(entry.task for entry in entries):
        rows = [e for e in entries if e.task == task]
        parts.append(f"\n## {task}\n")
        parts.append("| metric | title | formula | direction | default | requires |")
        parts.append("|---|---|---|---|---|---|")
        for e in rows:
            cells = (e.title, e.formula, e.direction, e.default, e.requires)
            parts.append(f"| `{e.metric}` | " + " | ".join(_cell(c) for c in cells) + " |")
        parts.append("\n| metric | interval | test | reference |")
        parts.append("|---|---|---|---|")
        for e in rows:
            cells = (e.interval, e.test, e.reference)
            parts.append(f"| `{e.metric}` | " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(parts) + "\n"


def render_json(entries: list[Entry]) -> str:
    return json.dumps([asdict(entry) for entry in entries], indent=2) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}


def render(task: str | None = None, fmt: str = "text") -> str:
    """The catalogue of ``task`` (or every task) as ``fmt`` (one of :data:`FORMATS`)."""
    return RENDERERS[fmt](catalogue(task))
