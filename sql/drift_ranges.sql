-- Shared grid for drift histograms: range of each numeric feature over reference + current
-- windows with its count (Sturges' bin count), the reference standard deviation (for the
-- normalised Wasserstein distance) and the number of distinct reference values: exact
-- (ref_distinct_i) where the engine has no approximate count, else a HyperLogLog estimate
-- (ref_distinct_estimate_i), completed where needed by SqlBuilder.drift_distinct's exact
-- count (drift.py).
SELECT
    {range_outputs}
    SUM(CASE WHEN {pred_ts} < {current_start} THEN 1 ELSE 0 END) AS n_reference,
    SUM(CASE WHEN {pred_ts} >= {current_start} THEN 1 ELSE 0 END) AS n_current
FROM {predictions} AS p
WHERE {pred_ts} >= {reference_start}
  AND {pred_ts} < {window_end}
  AND p.{pred_version} = {model_version}
