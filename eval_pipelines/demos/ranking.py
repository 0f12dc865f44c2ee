"""Demo tables of the search ranker (``evals/search_ranker.yaml``, task ``ranking``).

``search_ranker_logs``: one row per (search, result) as served, both versions shadow-scoring
the same results of each search (the same row id ``prediction_id`` for both, the list id
``search_id``); ``search_ranker_labels``: implicit feedback, one row per result the user
engaged with (graded relevance 1 click, 2 add to cart, 3 purchase), none for the others.

Planted truth: the candidate ``v2`` ranks better on ios and android but much worse on ``web``
(its scores there barely follow relevance), so its NDCG@10 improves overall and drops on
``device=web``: the spec's ``max_regression`` gate on ``ndcg@10`` holds for that reason.
"""

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

DEVICES = np.array(["ios", "android", "web"])
DEVICE_SHARE = [0.45, 0.4, 0.15]
COUNTRIES = np.array(["US", "GB", "DE", "BR"])
COUNTRY_SHARE = [0.4, 0.25, 0.2, 0.15]
# Results per search: 5 to 15.
MIN_RESULTS, MAX_RESULTS = 5, 15
# How closely each version's score follows the result's latent quality: score = weight *
# quality + N(0, 1). v2 is the sharper ranker except on web.
SCORE_WEIGHT = {"v1": {"ios": 1.0, "android": 1.0, "web": 1.0}}
SCORE_WEIGHT["v2"] = {"ios": 1.6, "android": 1.6, "web": 0.2}
# Relevance grades from the latent quality: below the first cut no engagement (no label row).
GRADE_CUTS = (0.6, 1.4, 2.1)


def write_tables(
    con: duckdb.DuckDBPyConnection, start: dt.date, weeks: int, rows: int, seed: int
) -> None:
    """Create and fill the search ranker's tables: about ``rows // 4`` prediction rows (both
    versions) over ``weeks`` weeks from ``start``, deterministic in ``seed``."""
    rng = np.random.default_rng([seed, 4])
    results = max(rows // 8, MAX_RESULTS)  # per version: rows // 4 rows over both
    sizes = rng.integers(MIN_RESULTS, MAX_RESULTS + 1, results // MIN_RESULTS)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), results, side="right")]
    searches, n = len(sizes), int(sizes.sum())
    search_of = np.repeat(np.arange(searches), sizes)
    seconds = rng.integers(0, weeks * 7 * 86400, searches)
    ts = pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")
    device = rng.choice(DEVICES, searches, p=DEVICE_SHARE)
    country = rng.choice(COUNTRIES, searches, p=COUNTRY_SHARE)
    query_length = rng.integers(1, 9, searches)
    quality = rng.normal(0.0, 1.0, n)
    grade = np.searchsorted(GRADE_CUTS, quality + rng.normal(0.0, 0.3, n))
    frames = []
    for version, weights in SCORE_WEIGHT.items():
        weight = np.select([device[search_of] == d for d in DEVICES], [weights[d] for d in DEVICES])
        frames.append(
            pd.DataFrame(
                {
                    "prediction_id": np.arange(n, dtype=np.int64),
                    "search_id": np.char.add("s", search_of.astype(str)),
                    "ts": ts[search_of],
                    "model_version": version,
                    "score": weight * quality + rng.normal(0.0, 1.0, n),
                    "device": device[search_of],
                    "country": country[search_of],
                    "query_length": query_length[search_of],
                }
            )
        )
    logs = pd.concat(frames, ignore_index=True)
    engaged = grade > 0
    # Engagement within minutes to days; about 1% after the spec's 14-day maximum delay.
    delay = rng.exponential(3.0, n) * 86400
    labels = pd.DataFrame(
        {
            "prediction_id": np.arange(n, dtype=np.int64)[engaged],
            "relevance": grade[engaged].astype(np.int32),
            "labeled_at": (ts[search_of] + pd.to_timedelta(delay, unit="s"))[engaged],
        }
    )
    con.register("_search_logs", logs)
    con.register("_search_labels", labels)
    try:
        con.execute("CREATE OR REPLACE TABLE search_ranker_logs AS SELECT * FROM _search_logs")
        con.execute("CREATE OR REPLACE TABLE search_ranker_labels AS SELECT * FROM _search_labels")
    finally:
        con.unregister("_search_logs")
        con.unregister("_search_labels")
