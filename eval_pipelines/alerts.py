"""Slack-compatible webhook alerts for a run that needs a human's attention.

:func:`build_alert` turns a run's verdict (``verdict.json``), comparison and drift frames into
a Slack payload (``{"text": ..., "blocks": [...]}``, section blocks with mrkdwn), or ``None``
when there is nothing to look at. :func:`send_webhook` POSTs it with bounded retries.

The payload follows Slack's incoming-webhook format, which Mattermost, Rocket.Chat and
Teams-via-Workflows also accept. Slack rejects a section whose text exceeds 3000 characters,
so every list is cut to fit and ends with "... and N more".

A webhook URL is a secret (Slack's embed a token in the path): it never appears in an
exception message or a log line, only its scheme and host.
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from eval_pipelines.drift_stats import METHODS as DRIFT_METHODS
from eval_pipelines.drift_stats import drift_comparison, drifted_rows
from eval_pipelines.errors import EvalError
from eval_pipelines.reasons import group_reasons

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

HOLD = "hold"
GUARDRAILS = "ship_with_guardrails"
WARN = "warn"  # a reason's outcome: a severity: warn gate that did not pass
REGRESSED = "regressed"  # comparison_table's outcome for a significant change for the worse
SECTION_LIMIT = 3000  # Slack: a section block's text is at most 3000 characters
FALLBACK_LIMIT = 3000  # the notification text; Slack truncates long ones anyway
LINE_LIMIT = 600  # one bullet; a single huge reason must not crowd out the rest
MAX_REGRESSIONS = 10
MAX_DRIFTED = 10
MAX_REASONS = 15
MAX_RETRY_AFTER_S = 30.0


def build_alert(
    verdict: dict[str, Any],
    comparison: pd.DataFrame | None,
    drift: pd.DataFrame,
    *,
    report_url: str | None = None,
    run_url: str | None = None,
) -> dict[str, Any] | None:
    """A Slack payload when the run needs attention, else ``None``.

    Alerts on any of: the decision is ``hold`` or ``ship_with_guardrails`` (its guardrails
    listed); a comparison row's outcome is ``regressed``
    (candidate significantly worse after the BH correction, whether or not a gate covers that
    metric or slice); a drift row is ``drifted``. A ``ship``, or an ``inconclusive`` with no
    significant regression and no drift, returns ``None``: inconclusive means "not enough
    labeled data yet", which the weekly report already says, and paging on it every week would
    train people to ignore the channel.

    Regressions are listed most significant first (q-value, then absolute delta), at most
    ``MAX_REGRESSIONS``; drifted rows Evidently's default method first. Text is mrkdwn-escaped.
    """
    decision = str(verdict.get("decision") or "unknown")
    regressions = _regressions(comparison)
    drifted = _drifted(drift)
    if decision not in (HOLD, GUARDRAILS) and regressions.empty and drifted.empty:
        return None

    model = str(verdict.get("model") or "model")
    window = str(verdict.get("window") or "")
    holding = [r for r in verdict.get("reasons") or [] if r.get("outcome") == HOLD]
    guardrails = [r for r in verdict.get("reasons") or [] if r.get("outcome") == WARN]

    counts = []
    if holding:
        counts.append(_plural(len(holding), "holding reason"))
    if guardrails:
        counts.append(_plural(len(guardrails), "guardrail"))
    if not regressions.empty:
        counts.append(_plural(len(regressions), "significant regression"))
    if not drifted.empty:
        counts.append(_plural(len(drifted), "drifted feature result"))
    fallback = f"{_esc(model)} {_esc(window)}: {_esc(decision.upper())}" + (
        f" ({', '.join(counts)})" if counts else ""
    )

    icon = ":rotating_light:" if decision == HOLD else ":warning:"
    head = f"{icon} *{_esc(model)}* week *{_esc(window or '?')}*: decision *{_esc(decision)}*"
    candidate, baseline = verdict.get("candidate"), verdict.get("baseline")
    if candidate and baseline:
        head += f"\ncandidate `{_esc(candidate)}` vs baseline `{_esc(baseline)}`"
    blocks = [_section(head)]

    if holding:
        # One bullet per gate (its worst slice, then "and N more"), so one cause is one line.
        lines = [f"• {_esc(g.message)}" for g in group_reasons(holding)]
        blocks.append(_list_section(f"*Holding reasons ({len(holding)})*", lines, MAX_REASONS))
    if guardrails:
        lines = [f"• {_esc(g.message)}" for g in group_reasons(guardrails)]
        title = f"*Guardrails ({len(guardrails)})* (severity: warn gates that did not pass)"
        blocks.append(_list_section(title, lines, MAX_REASONS))
    if not regressions.empty:
        lines = [_regression_line(row) for row in regressions.itertuples(index=False)]
        title = f"*Significant regressions ({len(lines)})* (candidate - baseline, q = BH q-value)"
        blocks.append(_list_section(title, lines, MAX_REGRESSIONS))
    if not drifted.empty:
        lines = [_drift_line(row) for row in drifted.itertuples(index=False)]
        blocks.append(_list_section(f"*Drift ({len(lines)})*", lines, MAX_DRIFTED))

    links = []
    if report_url:
        links.append(_link(report_url, "Report"))
    if run_url:
        links.append(_link(run_url, "MLflow run"))
    if links:
        blocks.append(_section(" · ".join(links)))
    return {"text": _cut(fallback, FALLBACK_LIMIT), "blocks": blocks}


def send_webhook(
    url: str,
    payload: dict[str, Any],
    *,
    timeout_s: float = 10,
    attempts: int = 3,
    backoff_s: float = 0.5,
) -> None:
    """POST ``payload`` as JSON; retry connection errors, 5xx and 429; raise EvalError at last.

    Waits ``backoff_s * 2**k`` between attempts (or the server's ``Retry-After`` on a 429, at
    most ``MAX_RETRY_AFTER_S``). Other 4xx answers (a revoked or mistyped webhook) are not
    retried: repeating them cannot succeed. Redirects are not followed, since urllib would
    re-send a POST as a bodiless GET and report success. Messages name only the scheme and host.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    where = _describe_url(url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise EvalError(f"webhook URL ({where}) must be http or https")
    body = json.dumps(payload, allow_nan=False).encode()
    opener = urllib.request.build_opener(_NoRedirect)
    reason = "no attempt made"
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "eval-pipelines"},
        )
        delay = backoff_s * 2 ** (attempt - 1)
        try:
            with opener.open(request, timeout=timeout_s) as response:
                response.read()
            logger.info("webhook %s: delivered on attempt %d", where, attempt)
            return
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            reason = f"HTTP {status}"
            if not (status >= 500 or status == 429):
                raise EvalError(
                    f"webhook POST to {where} was rejected with HTTP {status}; check that the "
                    "webhook URL is current (not retried)"
                ) from None
            retry_after = _retry_after(exc.headers.get("Retry-After")) if status == 429 else None
            if retry_after is not None:
                delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            inner = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            reason = _describe_os_error(inner)
        if attempt < attempts:
            logger.warning(
                "webhook %s: attempt %d of %d failed (%s); retrying in %.2gs",
                where,
                attempt,
                attempts,
                reason,
                delay,
            )
            time.sleep(delay)
    raise EvalError(f"webhook POST to {where} failed after {attempts} attempts: {reason}")


# ----------------------------------------------------------------------------------------------
# Payload pieces
# ----------------------------------------------------------------------------------------------


def _regressions(comparison: pd.DataFrame | None) -> pd.DataFrame:
    import pandas as pd

    if comparison is None or comparison.empty or "outcome" not in comparison:
        return pd.DataFrame()
    rows = comparison[comparison["outcome"] == REGRESSED]
    order = rows.assign(_size=rows["delta"].abs()).sort_values(
        ["q_value", "_size"], ascending=[True, False], na_position="last", kind="stable"
    )
    return order.drop(columns="_size")


def _drifted(drift: pd.DataFrame | None) -> pd.DataFrame:
    """The rows that make a feature drifted (drift_stats.drifted_rows, the one definition)."""
    rows = drifted_rows(drift)
    if rows.empty:
        return rows
    if "default" in rows:
        rows = rows.assign(_default=rows["default"].fillna(False).astype(bool))
        rows = rows.sort_values(
            ["_default", "feature"], ascending=[False, True], kind="stable"
        ).drop(columns="_default")
    return rows


def _regression_line(row: Any) -> str:
    return (
        f"• `{_esc(row.slice)}` {_esc(row.metric)}: {_num(row.baseline)} → "
        f"{_num(row.candidate)}, Δ {_signed(row.delta)} "
        f"[{_signed(row.delta_ci_low)}, {_signed(row.delta_ci_high)}], "
        f"q={_num(row.q_value, '.3g')}, n={_count(row.n)}"
    )


def _drift_line(row: Any) -> str:
    method = _esc(row.method)
    # The sign of the method's own rule (ks drifts at p <= threshold, chi_square at p <).
    sign = _esc(drift_comparison(row.method, True)) if row.method in DRIFT_METHODS else "<"
    if _finite(row.p_value):  # test methods decide on the p-value
        numbers = (
            f"p={_num(row.p_value, '.3g')} {sign} {_num(row.threshold, 'g')} "
            f"(statistic {_num(row.statistic)})"
        )
    else:  # distance methods decide on the statistic (drift if statistic >= threshold)
        numbers = f"{_num(row.statistic)} ≥ threshold {_num(row.threshold, 'g')}"
    sizes = ""
    if hasattr(row, "n_reference") and hasattr(row, "n_current"):
        sizes = f" (reference n={_count(row.n_reference)}, current n={_count(row.n_current)})"
    return f"• `{_esc(row.feature)}` {method}: {numbers}{sizes}"


def _list_section(title: str, lines: list[str], max_items: int) -> dict[str, Any]:
    """Title plus as many bullets as fit in ``max_items`` and the section limit."""
    kept: list[str] = []
    text = title
    for i, line in enumerate(lines):
        line = _cut(line, LINE_LIMIT)
        rest = len(lines) - i - 1
        more = f"\n… and {rest} more" if rest else ""
        if i >= max_items or len(text) + 1 + len(line) + len(more) > SECTION_LIMIT:
            break
        kept.append(line)
        text = f"{text}\n{line}"
    if len(kept) < len(lines):
        text += f"\n… and {len(lines) - len(kept)} more"
    return _section(text)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_LIMIT)}}


def _link(url: str, label: str) -> str:
    # Slack's <url|label> syntax: '|' and '>' would end the URL early.
    safe = _esc(url).replace("|", "%7C")
    return f"<{safe}|{label}>"


def _esc(value: Any) -> str:
    """Escape the three characters Slack mrkdwn gives meaning to (&, <, >)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _num(value: Any, fmt: str = ".4f") -> str:
    return format(float(value), fmt) if _finite(value) else "n/a"


def _signed(value: Any) -> str:
    return _num(value, "+.4f")


def _count(value: Any) -> str:
    return f"{int(value):,}" if _finite(value) else "n/a"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# ----------------------------------------------------------------------------------------------
# Delivery helpers
# ----------------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx then surfaces as an HTTPError (not retried)


def _describe_url(url: str) -> str:
    """Scheme, host and port of a webhook URL: the path and query hold the token."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the webhook (unparsable URL)"
    return f"{parts.scheme or '?'}://{parts.hostname or '?'}{port}"


def _describe_os_error(error: Any) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError):
        return f"{type(error).__name__}: {error.strerror or 'connection failed'}"
    return "connection failed"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
