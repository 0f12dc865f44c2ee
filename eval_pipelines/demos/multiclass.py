"""Demo tables of the multiclass task: an intent classifier (``evals/intent_classifier.yaml``).

Tables ``intent_logs`` (one row per request and version, v1 and v2 shadow-scoring the same
requests: the predicted intent, one probability column per intent, the channel, the locale
and the message length) and ``intent_labels`` (the intent an agent assigned, most within a
few days, some never).

The planted truth: v2 is better than v1 on every intent and channel (its scores separate the
intents more), **except** that on the ``voice`` channel it mistakes most ``cancel`` requests
for ``billing`` (speech transcripts of "cancel my plan" read like billing questions to it).
Overall v2's accuracy and macro F1 improve, while its recall of ``cancel`` on
``channel=voice`` drops from about 0.85 to about 0.45: the spec's gate on ``recall.cancel``
(``max_regression``, every slice) holds the release for that slice alone.
"""

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

INTENTS = ("billing", "cancel", "order_status", "other")
INTENT_SHARE = (0.35, 0.25, 0.25, 0.15)
CHANNELS = ("chat", "email", "voice")
CHANNEL_SHARE = (0.5, 0.25, 0.25)
LOCALES = ("en", "de", "fr")
# How strongly each version's scores favour the true intent (logit margin), and the planted
# fault: v2's cancel logit on the voice channel, moved toward billing.
V1_MARGIN, V2_MARGIN, VOICE_CANCEL_SHIFT = 2.2, 2.8, 1.6
LABELED_SHARE = 0.9
MAX_DELAY_DAYS = 10


def write_tables(
    con: duckdb.DuckDBPyConnection, start: dt.date, weeks: int, rows: int, seed: int
) -> None:
    """Create and fill ``intent_logs`` and ``intent_labels`` (``rows // 4`` prediction rows:
    ``rows // 8`` requests scored by both versions), vectorised and deterministic."""
    rng = np.random.default_rng([seed, 10])
    n = max(1, rows // 8)
    C = len(INTENTS)
    ids = np.char.add("i", np.arange(n).astype(str))
    seconds = rng.integers(0, weeks * 7 * 86400, n)
    ts = pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")
    channel = rng.choice(len(CHANNELS), n, p=CHANNEL_SHARE)
    locale = rng.choice(LOCALES, n)
    intent = rng.choice(C, n, p=INTENT_SHARE)
    length = np.round(rng.lognormal(3.5, 0.6, n)).astype(np.int64)
    onehot = np.eye(C)[intent]
    cancel, billing = INTENTS.index("cancel"), INTENTS.index("billing")
    voice_cancel = (channel == CHANNELS.index("voice")) & (intent == cancel)
    frames = []
    for version, margin in (("v1", V1_MARGIN), ("v2", V2_MARGIN)):
        logits = margin * onehot + rng.standard_normal((n, C))
        if version == "v2":
            logits[voice_cancel, cancel] -= VOICE_CANCEL_SHIFT
            logits[voice_cancel, billing] += VOICE_CANCEL_SHIFT / 2
        scores = np.exp(logits - logits.max(1, keepdims=True))
        scores /= scores.sum(1, keepdims=True)
        frame = pd.DataFrame(
            {
                "prediction_id": ids,
                "ts": ts,
                "model_version": version,
                "predicted_intent": np.array(INTENTS)[scores.argmax(1)],
                "channel": np.array(CHANNELS)[channel],
                "locale": locale,
                "message_length": length,
            }
        )
        for c, name in enumerate(INTENTS):
            frame[f"p_{name}"] = np.round(scores[:, c], 6)
        frames.append(frame)
    logs = pd.concat(frames, ignore_index=True)
    labeled = rng.random(n) < LABELED_SHARE
    delay = pd.to_timedelta(rng.uniform(0, MAX_DELAY_DAYS * 86400, n).astype(np.int64), unit="s")
    labels = pd.DataFrame(
        {
            "prediction_id": ids[labeled],
            "intent": np.array(INTENTS)[intent[labeled]],
            "labeled_at": (ts + delay)[labeled],
        }
    )
    con.register("_intent_logs", logs)
    con.register("_intent_labels", labels)
    try:
        con.execute(
            "CREATE OR REPLACE TABLE intent_logs AS SELECT * REPLACE "
            "(CAST(ts AS TIMESTAMP) AS ts) FROM _intent_logs"
        )
        con.execute(
            "CREATE OR REPLACE TABLE intent_labels AS SELECT * REPLACE "
            "(CAST(labeled_at AS TIMESTAMP) AS labeled_at) FROM _intent_labels"
        )
    finally:
        con.unregister("_intent_logs")
        con.unregister("_intent_labels")
