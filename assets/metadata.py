"""Turning engine results into Dagster metadata: plain ints, floats, text and Markdown.

numpy scalars do not serialize as metadata, so every number goes through ``int()`` or
``float()`` here; undefined values (NaN) are left out rather than shown as numbers.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eval_pipelines.pipeline import Evaluation
from eval_pipelines.spec import OVERALL


def headline_metrics(evaluation: Evaluation) -> dict[str, float]:
    """``{"<version>/<metric>": value}`` for the overall slice, NaN values omitted."""
    metrics = evaluation.metrics
    overall = metrics[metrics["slice"] == OVERALL]
    headline = {}
    for row in overall.itertuples(index=False):
        value = float(row.value)
        if math.isfinite(value):
            headline[f"{row.model_version}/{row.metric}"] = value
    return dict(sorted(headline.items()))


def label_coverage(fingerprint: Mapping[str, Any]) -> float:
    """Labeled rows over all rows of the window (every version); 0.0 for an empty window."""
    rows = int(fingerprint.get("rows", 0))
    return float(int(fingerprint.get("labeled_rows", 0)) / rows) if rows else 0.0


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; pipes and newlines in cells are escaped."""
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
