"""Alert payloads from hand-made verdicts and frames, and delivery to a real local HTTP server."""

from __future__ import annotations

import json
import socket
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.alerts import SECTION_LIMIT, build_alert, send_webhook
from eval_pipelines.drift import DRIFT_COLUMNS
from eval_pipelines.errors import EvalError
from eval_pipelines.evaluation import COMPARISON_COLUMNS

pytestmark = pytest.mark.timeout(60)

TOKEN_PATH = "/services/T0000/B0000/XXsecretTOKENxx"


def verdict(decision: str, *holding: str) -> dict:
    reasons = [
        {
            "gate": "min_label_coverage",
            "outcome": "pass",
            "message": "label coverage of v2: 93.0% (93 of 100 predictions labeled) vs 80%",
            "slice": None,
            "feature": None,
        }
    ]
    reasons += [
        {
            # One gate per reason: reasons of one gate share a bullet (test_reasons.py).
            "gate": f"{{metric=roc_auc, slice=s{i}}}",
            "outcome": "hold",
            "message": m,
            "slice": f"s{i}",
            "feature": None,
        }
        for i, m in enumerate(holding)
    ]
    return {
        "decision": decision,
        "model": "fraud_detector",
        "window": "2026-11-16",
        "candidate": "v2",
        "baseline": "v1",
        "reasons": reasons,
    }


def comparison(*outcomes: str) -> pd.DataFrame:
    rows = []
    for i, outcome in enumerate(outcomes):
        delta = -0.01 * (i + 1) if outcome == "regressed" else 0.001
        rows.append(
            {
                "slice": f"country=C{i}",
                "metric": "roc_auc",
                "baseline": 0.9,
                "candidate": 0.9 + delta,
                "delta": delta,
                "delta_ci_low": delta - 0.005,
                "delta_ci_high": delta + 0.005,
                "p_value": 0.001 if outcome == "regressed" else 0.5,
                "q_value": 0.002 * (i + 1) if outcome == "regressed" else 0.6,
                "test": "paired bucket bootstrap (t, K - 1 df)",
                "n": 1000 + i,
                "outcome": outcome,
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def drift(*drifted: bool) -> pd.DataFrame:
    rows = []
    for i, flag in enumerate(drifted):
        test = i % 2 == 1  # alternate distance (psi) and test (ks) methods
        rows.append(
            {
                "feature": f"feature_{i}",
                "kind": "numeric",
                "method": "ks" if test else "psi",
                "statistic": 0.31 if flag else 0.01,
                "p_value": (1e-6 if flag else 0.4) if test else np.nan,
                "threshold": 0.05 if test else 0.1,
                "drifted": flag,
                "default": test,
                "decides": True,  # psi rows: a drift gate on psi applies to the feature
                "n_reference": 40_000,
                "n_current": 10_000,
                "missing_reference": 0,
                "missing_current": 0,
            }
        )
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def texts(payload: dict) -> list[str]:
    return [block["text"]["text"] for block in payload["blocks"]]


def check_slack_limits(payload: dict) -> None:
    json.dumps(payload, allow_nan=False)  # serializable, no NaN
    assert len(payload["text"]) <= 3000
    for block in payload["blocks"]:
        assert block["type"] == "section"
        assert block["text"]["type"] == "mrkdwn"
        assert len(block["text"]["text"]) <= SECTION_LIMIT


# ----------------------------------------------------------------------------------------------
# build_alert
# ----------------------------------------------------------------------------------------------


def test_hold_lists_holding_reasons_and_links() -> None:
    payload = build_alert(
        verdict("hold", "roc_auc on android regressed significantly by 0.0300", "x <b> & y"),
        comparison("no significant change"),
        drift(False),
        report_url="s3://evals/fraud/2026-11-16/report.md",
        run_url="https://mlflow.example.com/#/experiments/1/runs/abc?x=1&y=2",
    )
    assert payload is not None
    check_slack_limits(payload)
    body = "\n".join(texts(payload))
    assert "fraud_detector" in body and "2026-11-16" in body and "hold" in body
    assert "Holding reasons (2)" in body
    assert "roc_auc on android regressed significantly" in body
    assert "x &lt;b&gt; &amp; y" in body  # mrkdwn-escaped
    assert "label coverage" not in body  # passing reasons are not listed
    assert "<s3://evals/fraud/2026-11-16/report.md|Report>" in body
    assert "|MLflow run>" in body and "x=1&amp;y=2" in body
    assert payload["text"].startswith("fraud_detector 2026-11-16: HOLD")


def test_ship_without_regressions_or_drift_is_silent() -> None:
    assert build_alert(verdict("ship"), comparison("no significant change"), drift(False)) is None
    assert build_alert(verdict("ship"), None, drift()) is None
    assert build_alert(verdict("inconclusive"), comparison("not tested"), drift(False)) is None
    assert build_alert(verdict("ship"), comparison("improved"), pd.DataFrame()) is None


def test_significant_regression_alone_alerts() -> None:
    payload = build_alert(
        verdict("ship"), comparison("no significant change", "regressed"), drift(False)
    )
    assert payload is not None
    check_slack_limits(payload)
    body = "\n".join(texts(payload))
    assert "Significant regressions (1)" in body
    assert "`country=C1` roc_auc: 0.9000 → 0.8800, Δ -0.0200 [-0.0250, -0.0150]" in body
    assert "q=0.004" in body and "n=1,001" in body
    assert "Holding reasons" not in body
    assert "candidate `v2` vs baseline `v1`" in body


def test_drift_alone_alerts_with_statistic_vs_threshold() -> None:
    payload = build_alert(verdict("inconclusive"), None, drift(True, True, False))
    assert payload is not None
    body = "\n".join(texts(payload))
    assert "Drift (2)" in body
    assert "`feature_0` psi: 0.3100 ≥ threshold 0.1" in body
    assert "`feature_1` ks: p=1e-06 &lt;= 0.05 (statistic 0.3100)" in body
    assert "feature_2" not in body
    # Evidently's default method (ks here) is listed first.
    assert body.index("feature_1") < body.index("feature_0")


def test_drift_alerts_only_rows_that_decide_for_their_feature() -> None:
    """The alert reads the one definition (drift_stats.drifted_rows): a method reported for
    information that drifted, while the feature's default method did not, is no alert."""
    informational = drift(True, False).assign(decides=[False, True])
    assert build_alert(verdict("ship"), None, informational) is None
    payload = build_alert(verdict("ship"), None, drift(True, False))
    assert payload is not None
    assert "`feature_0` psi" in "\n".join(texts(payload))


def test_worst_regressions_first_and_long_lists_are_cut() -> None:
    many = comparison(*["regressed"] * 40)
    reasons = [f"gate {i}: " + "very long message " * 40 for i in range(60)]
    payload = build_alert(verdict("hold", *reasons), many, drift(*[True] * 30))
    assert payload is not None
    check_slack_limits(payload)
    regressions = next(t for t in texts(payload) if t.startswith("*Significant regressions"))
    lines = [line for line in regressions.splitlines() if line.startswith("•")]
    assert len(lines) == 10
    assert lines[0].startswith("• `country=C0`")  # smallest q-value first
    assert regressions.endswith("… and 30 more")
    holding = next(t for t in texts(payload) if t.startswith("*Holding reasons"))
    assert "more" in holding.splitlines()[-1]
    drifted = next(t for t in texts(payload) if t.startswith("*Drift"))
    assert drifted.endswith("… and 20 more")


def test_huge_single_reason_stays_under_the_block_limit() -> None:
    payload = build_alert(verdict("hold", "x" * 10_000), None, drift())
    assert payload is not None
    check_slack_limits(payload)


# ----------------------------------------------------------------------------------------------
# send_webhook against a real local HTTP server
# ----------------------------------------------------------------------------------------------


class Hook:
    """A local webhook: answers with the scripted statuses in order, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append(
                    {"path": self.path, "type": self.headers["Content-Type"], "body": body}
                )
                status = hook.statuses.pop(0) if hook.statuses else 200
                payload = b"ok" if status == 200 else b"error"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{TOKEN_PATH}"


@pytest.fixture
def hook_factory() -> Iterator:
    started: list[tuple[Hook, threading.Thread]] = []

    def start(statuses: list[int]) -> Hook:
        hook = Hook(statuses)
        thread = threading.Thread(target=hook.server.serve_forever, daemon=True)
        thread.start()
        started.append((hook, thread))
        return hook

    yield start
    for hook, thread in started:
        hook.server.shutdown()
        hook.server.server_close()
        thread.join(5)


def assert_no_secret(exc: BaseException) -> None:
    rendered = str(exc) + "".join(traceback.format_exception(exc))
    assert "XXsecretTOKENxx" not in rendered
    assert "/services/" not in rendered


def test_delivers_exact_json(hook_factory) -> None:
    hook = hook_factory([])
    payload = build_alert(verdict("hold", "a reason"), None, drift())
    send_webhook(hook.url, payload, backoff_s=0)
    assert len(hook.requests) == 1
    request = hook.requests[0]
    assert request["path"] == TOKEN_PATH
    assert request["type"] == "application/json"
    assert json.loads(request["body"]) == payload


def test_retries_5xx_then_delivers(hook_factory) -> None:
    hook = hook_factory([500, 503])
    send_webhook(hook.url, {"text": "hi"}, attempts=3, backoff_s=0.01)
    assert len(hook.requests) == 3


def test_retries_429(hook_factory) -> None:
    hook = hook_factory([429])
    send_webhook(hook.url, {"text": "hi"}, attempts=2, backoff_s=0.01)
    assert len(hook.requests) == 2


def test_always_500_raises_without_the_token(hook_factory, caplog) -> None:
    hook = hook_factory([500] * 10)
    caplog.set_level("DEBUG", logger="eval_pipelines.alerts")
    with pytest.raises(EvalError) as info:
        send_webhook(hook.url, {"text": "hi"}, attempts=3, backoff_s=0.01)
    assert len(hook.requests) == 3
    assert "after 3 attempts" in str(info.value) and "HTTP 500" in str(info.value)
    assert "http://127.0.0.1:" in str(info.value)
    assert_no_secret(info.value)
    assert "XXsecretTOKENxx" not in caplog.text and caplog.records  # retries were logged


def test_client_error_is_not_retried(hook_factory) -> None:
    hook = hook_factory([404])
    with pytest.raises(EvalError, match="HTTP 404") as info:
        send_webhook(hook.url, {"text": "hi"}, attempts=3, backoff_s=0.01)
    assert len(hook.requests) == 1
    assert_no_secret(info.value)


def test_connection_refused_raises() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EvalError, match="after 2 attempts") as info:
        send_webhook(
            f"http://127.0.0.1:{port}{TOKEN_PATH}", {"text": "hi"}, attempts=2, backoff_s=0
        )
    assert "ConnectionRefusedError" in str(info.value)
    assert_no_secret(info.value)


def test_rejects_non_http_urls() -> None:
    url = "file:///etc/passwd?" + TOKEN_PATH  # in a variable: tracebacks quote source lines
    with pytest.raises(EvalError, match="http or https") as info:
        send_webhook(url, {"text": "hi"})
    assert_no_secret(info.value)
