"""Names and keys: run keys, metric keys and tokens, week steps (the package docstring
of :mod:`eval_pipelines.tracking`, "Metrics: step, timestamp and headline keys")."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime

from eval_pipelines.tracking.errors import TrackingError
from eval_pipelines.tracking.schema import MAX_KEY
from eval_pipelines.windows import naive_utc

_EPOCH_MONDAY = date(1970, 1, 5)
_WORD = r"[A-Za-z0-9_]+"
_PLAIN_NAME = re.compile(rf"{_WORD}(?:[.-]{_WORD})*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_MAX_NAME, _LOSSY_KEEP, _HASH_DIGITS = 64, 48, 10
_FILTER_UNSAFE = re.compile(r"['\"\\\n\r]")


def week_step(window_start: date | datetime) -> int:
    """Weeks between the Monday 1970-01-05 and the week containing ``window_start``.

    ``(day - 1970-01-05).days // 7``: consecutive ISO weeks get consecutive steps, any day of
    a week maps to that week's step, and weeks before 1970-01-05 get negative steps. An aware
    datetime is converted to UTC first.
    """
    if isinstance(window_start, datetime):
        window_start = naive_utc(window_start).date()
    return (window_start - _EPOCH_MONDAY).days // 7


def _week_point(week_start: date | datetime) -> tuple[int, int]:
    """(step, timestamp in ms) of every metric point of the week starting ``week_start``."""
    if isinstance(week_start, datetime):
        week_start = naive_utc(week_start).date()
    moment = datetime(week_start.year, week_start.month, week_start.day, tzinfo=UTC)
    return week_step(week_start), max(0, int(moment.timestamp() * 1000))


def week_run_key(model: str, week: str) -> str:
    """The run key of ``model``'s evaluation of ``week``: the runs nested in the trend run."""
    return f"{model}/week/{week}"


def trend_run_key(model: str) -> str:
    return f"{model}/trend"


def _lossy(text: str) -> str:
    readable = _UNSAFE.sub("_", text.replace(", ", "-").replace("=", "."))[:_LOSSY_KEEP]
    digest = hashlib.md5(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_DIGITS]
    return f"{readable}--{digest}"


def name_token(text: str) -> str:
    """A model version, feature, method or metric name as one metric-key segment.

    Plain names (ASCII word characters separated by single ``.`` or ``-``, at most 64
    characters) are kept; anything else gets the lossy form with an MD5 suffix (module
    docstring).
    """
    text = str(text)
    if len(text) <= _MAX_NAME and _PLAIN_NAME.fullmatch(text):
        return text
    return _lossy(text)


def metric_token(name: str) -> str:
    """A metric's name as one key segment: a cutoff's ``@`` reads ``_at_`` (ranking's
    ``ndcg@10`` is ``ndcg_at_10``; no registry has a name with ``_at_``, so keys stay
    distinct), every other character as :func:`name_token`."""
    return name_token(str(name).replace("@", "_at_"))


def metric_key(*parts: str) -> str:
    """Join already-tokenized segments with ``/`` (checked against MLflow's key limit)."""
    key = "/".join(parts)
    if len(key) > MAX_KEY:  # cannot happen with name_token segments
        raise TrackingError(f"metric key {key[:80]!r}... is longer than {MAX_KEY} characters")
    return key


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _filter_literal(value: str, what: str) -> str:
    if _FILTER_UNSAFE.search(value):
        raise ValueError(f"{what} {value!r} may not contain quotes, backslashes or newlines")
    return value
