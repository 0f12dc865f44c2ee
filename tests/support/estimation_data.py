"""Weeks of predictions whose score is a miscalibrated but monotone view of the true
probability, for the label-free estimation tests (tests/test_estimation*.py).

Each row has a latent logit ``z ~ N(shift, 1.5)``, a label ``y ~ Bernoulli(sigmoid(z))`` and a
score ``sigmoid(0.6 z - 0.4)``: the score ranks rows correctly but is not a probability, so
CBPE must calibrate it. ``P(y | score)`` is the same in every week, whatever the shift (a
covariate shift), which is the assumption CBPE rests on.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Week:
    start: str  # a Monday
    rows: int
    labeled: bool = True
    shift: float = -1.0  # mean of the latent logit (the covariate shift)


def miscalibrated(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(0.6 * z - 0.4)))


def cbpe_weeks(
    rng: np.random.Generator, weeks: list[Week], versions: tuple[str, ...] = ("v1",)
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(inference_logs, labels, withheld) of ``weeks``: one row per request and version;
    labels 1 day after the prediction, in ``labels`` for labeled weeks and in ``withheld``
    (never written to the warehouse: what the estimate is checked against) for the others."""
    logs, labels, withheld = [], [], []
    for w, week in enumerate(weeks):
        n = week.rows
        ids = np.array([f"w{w}r{i:06d}" for i in range(n)])
        ts = pd.Timestamp(week.start) + pd.to_timedelta(rng.integers(0, 6 * 86400, n), unit="s")
        z = rng.normal(week.shift, 1.5, n)
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(int)
        country = rng.choice(["US", "GB", "DE"], n)
        for i, version in enumerate(versions):
            noise = rng.normal(0.0, 0.3 * i, n)  # later versions see a noisier z
            logs.append(
                pd.DataFrame(
                    {
                        "prediction_id": ids,
                        "ts": ts,
                        "model_version": version,
                        "score": miscalibrated(z + noise),
                        "country": country,
                    }
                )
            )
        frame = pd.DataFrame(
            {"prediction_id": ids, "label": y, "labeled_at": ts + pd.Timedelta(days=1)}
        )
        (labels if week.labeled else withheld).append(frame)
    empty = pd.DataFrame(
        {
            "prediction_id": pd.Series([], dtype=str),
            "label": pd.Series([], dtype=int),
            "labeled_at": pd.Series([], dtype="datetime64[ns]"),
        }
    )
    return (
        pd.concat(logs, ignore_index=True),
        pd.concat([empty, *labels], ignore_index=True),
        pd.concat([empty, *withheld], ignore_index=True),
    )
