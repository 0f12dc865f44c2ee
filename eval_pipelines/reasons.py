"""Gate reasons grouped for people: one line per gate and outcome.

A gate without a ``slice`` is judged on every slice, so one cause (recall on android) gives a
HOLD line per slice that contains android traffic, and a passing ``min`` gate gives a line per
slice. The verdict keeps every reason (``verdict.json``, the list auditors and scripts read);
the report, the CLI, the alert and the Dagster metadata show, per gate and outcome, the worst
case and "and N more slices" naming the others.

"Worst" is the reason's ``severity`` (higher is worse; set by the gate that made it, e.g. how
far past the bound), ties kept in the gate's own order.
"""

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

OUTCOME_ORDER = ("hold", "inconclusive", "warn", "pass")
NAMED_OTHERS = 5  # names listed after "and N more"; the full list is in verdict.json


@dataclass(frozen=True)
class ReasonGroup:
    gate: str
    outcome: str
    worst_message: str
    others: tuple[str, ...]  # slice or feature of every other reason in the group
    kind: str  # what the others are: slice, feature or reason

    @property
    def count(self) -> int:
        return 1 + len(self.others)

    @property
    def message(self) -> str:
        if not self.others:
            return self.worst_message
        # Quoted: slice names hold commas themselves ("country=DE, device=android").
        named = [f"'{name}'" for name in self.others[:NAMED_OTHERS] if name]
        listed = f": {', '.join(named)}" if named else ""
        if named and len(self.others) > len(named):
            listed += ", …"
        noun = self.kind if len(self.others) == 1 else f"{self.kind}s"
        return f"{self.worst_message}; and {len(self.others)} more {noun}{listed}"


def _as_dict(reason: Any) -> Mapping[str, Any]:
    return asdict(reason) if is_dataclass(reason) else reason


def _kind(rows: list[Mapping[str, Any]]) -> str:
    if all(r.get("slice") for r in rows):
        return "slice"
    if all(r.get("feature") for r in rows):
        return "feature"
    return "reason"


def group_reasons(reasons: Iterable[Any]) -> list[ReasonGroup]:
    """Reasons (``Reason`` objects or their ``verdict.json`` dicts) grouped by gate and outcome:
    holds first, then inconclusive, then guardrails (``warn``), then passes; within an
    outcome, gates in their own order."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for reason in reasons:
        row = _as_dict(reason)
        groups.setdefault((row["gate"], row["outcome"]), []).append(row)
    ordered = sorted(
        groups.items(),
        key=lambda item: OUTCOME_ORDER.index(item[0][1]) if item[0][1] in OUTCOME_ORDER else 9,
    )
    result = []
    for (gate, outcome), rows in ordered:
        # max() keeps the first of equal severities: the gate's own order breaks ties.
        worst = max(rows, key=lambda r: float(r.get("severity") or 0.0))
        others = tuple(
            str(r.get("slice") or r.get("feature") or "") for r in rows if r is not worst
        )
        result.append(ReasonGroup(gate, outcome, worst["message"], others, _kind(rows)))
    return result
