"""What the tracker hands back: a run it tracks and a registered model version."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    experiment_id: str
    url: str | None  # the run in the MLflow UI when the tracking URI is http(s); else None
    # Set by Tracker.start when this new run replaced the key's run of another spec version.
    superseded: str | None = field(default=None, compare=False)
    # Set by Tracker.publish on a week run: the model's trend run in the UI (None: no UI).
    trend_url: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: int
    status: str  # READY / PENDING_REGISTRATION / FAILED_REGISTRATION
    aliases: tuple[str, ...]
    tags: dict[str, str]
    run_id: str | None
