"""Evaluation windows: ISO weeks starting Monday 00:00 UTC, half-open ``[start, end)``.

All timestamps in the engine are naive datetimes meaning UTC (the warehouse columns are
compared against naive literals); aware datetimes are converted at this boundary.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from eval_pipelines.errors import EvalError


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return self.start.date().isoformat()

    def __str__(self) -> str:
        return f"[{self.start:%Y-%m-%d %H:%M}, {self.end:%Y-%m-%d %H:%M}) UTC"


def naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def week_window(week: str | date | datetime) -> Window:
    """The week that starts on ``week`` (a Monday, ``YYYY-MM-DD``), in UTC."""
    if isinstance(week, str):
        try:
            day = date.fromisoformat(week.strip())
        except ValueError:
            raise EvalError(f"week: expected a date YYYY-MM-DD, got {week!r}") from None
    elif isinstance(week, datetime):
        day = naive_utc(week).date()
    else:
        day = week
    if day.weekday() != 0:
        monday = day - timedelta(days=day.weekday())
        raise EvalError(
            f"week: {day.isoformat()} is a {day:%A}; weeks start on Monday "
            f"(did you mean {monday.isoformat()}?)"
        )
    start = datetime(day.year, day.month, day.day)
    return Window(start, start + timedelta(days=7))


def last_complete_week(moment: datetime) -> str:
    """The Monday starting the last week that ended at or before ``moment`` (UTC)."""
    day = naive_utc(moment).date()
    this_monday = day - timedelta(days=day.weekday())
    return (this_monday - timedelta(days=7)).isoformat()


def reference_window(window: Window, weeks: int) -> Window:
    """The ``weeks`` weeks immediately before ``window``."""
    return Window(window.start - timedelta(days=7 * weeks), window.start)
