"""Failures of tracking calls: :class:`TrackingError`, the HTTP bounds of MLflow's client,
and messages that name the tracking host without credentials."""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mlflow.exceptions import MlflowException

from eval_pipelines.errors import EvalError

if TYPE_CHECKING:
    from eval_pipelines.tracking.tracker import Tracker


class TrackingError(EvalError):
    """A tracking call could not be made as asked (message names the run, model or key)."""


# ------------------------------------------------------------------- bounds and failures
# MLflow's HTTP client retries a failed call up to MLFLOW_HTTP_REQUEST_MAX_RETRIES times (7 by
# default, exponential backoff factor 2) with MLFLOW_HTTP_REQUEST_TIMEOUT (120 s) per attempt:
# a dead tracking server hangs a run for minutes. Our bounds are explicit (Tracker options,
# MlflowResource fields) and are applied here, the one place that sets MLflow's knobs. MLflow
# reads them from the environment at every call, so they are process-wide: the last Tracker
# created in a process wins (every Tracker of this project uses the same defaults). MLflow
# parses all three as integers. Worst case per call: (retries + 1) * timeout plus the backoff
# sleeps (0, 2, 4, ... * factor seconds); a refused connection fails in about
# factor * (2**retries - 2) seconds.
HTTP_TIMEOUT_S = 20
HTTP_MAX_RETRIES = 2
HTTP_BACKOFF_FACTOR = 1
_HTTP_ENV = {
    "timeout_s": "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "max_retries": "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "backoff_factor": "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
}


def configure_http(*, timeout_s: int, max_retries: int, backoff_factor: int) -> None:
    """Set MLflow's HTTP timeout, retries and backoff for this process (see above)."""
    for name, value in (
        ("timeout_s", timeout_s),
        ("max_retries", max_retries),
        ("backoff_factor", backoff_factor),
    ):
        if int(value) != value or value < (1 if name == "timeout_s" else 0):
            raise ValueError(f"MLflow HTTP {name} must be a whole number >= 0 (got {value!r})")
        os.environ[_HTTP_ENV[name]] = str(int(value))
    # MLflow prints "View run ... at: <tracking URI>/#/..." to stdout when a run ends, with
    # any user:password@ of the URI; our own links (TrackedRun.url) are scrubbed instead.
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"


def describe_uri(uri: str) -> str:
    """A tracking URI without credentials: scheme, host and port (or the store's path)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme in ("http", "https"):
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        return f"{parts.scheme}://{parts.hostname or '?'}{port}"
    return _scrub_text(uri)


def _scrub_text(text: str) -> str:
    """``text`` without URL user info and without MLflow credential values from the env."""
    text = re.sub(r"(?<=//)[^/@\s'\"]*@", "", text)
    for name in ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "timeout" in text.lower() or "timed out" in text.lower():
        return "no answer in time"
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "Max retries exceeded" in text or "ConnectionError" in text:
        return "connection failed"
    first = _scrub_text(text).strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:300]


@contextmanager
def tracking_errors(tracker: Tracker, action: str) -> Iterator[None]:
    """Turn a failed MLflow call into one :class:`TrackingError` sentence naming the tracking
    host and ``action`` (never credentials; the MLflow exception is not chained)."""
    try:
        yield
    except TrackingError:
        raise
    except (MlflowException, OSError) as exc:
        raise TrackingError(
            f"MLflow tracking server {tracker.host}: {action} failed ({_reason(exc)}; "
            f"timeout {os.environ.get(_HTTP_ENV['timeout_s'])} s, "
            f"{os.environ.get(_HTTP_ENV['max_retries'])} retries)"
        ) from None
    except Exception as exc:
        import requests

        if not isinstance(exc, requests.RequestException):
            raise
        raise TrackingError(
            f"MLflow tracking server {tracker.host}: {action} failed ({_reason(exc)})"
        ) from None
