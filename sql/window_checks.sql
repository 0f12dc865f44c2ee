-- Input checks on the window, aggregated in the warehouse: one row per model version.
WITH win AS (
{window}
)
SELECT
    model_version,
    COUNT(*) AS n,
    COUNT(id) AS n_id,
    COUNT(DISTINCT id) AS n_distinct_id,
    SUM(CASE WHEN score IS NULL OR NOT (score >= 0 AND score <= 1) THEN 1 ELSE 0 END)
        AS n_bad_score,
    COUNT(label) AS n_labeled,
    SUM(CASE WHEN label IS NOT NULL AND label NOT IN (0, 1) THEN 1 ELSE 0 END) AS n_bad_label,
    SUM(CASE WHEN label_excluded = 'before_prediction' THEN 1 ELSE 0 END)
        AS n_label_before_prediction,
    SUM(CASE WHEN label_excluded = 'too_late' THEN 1 ELSE 0 END) AS n_label_too_late,
    -- Order-independent content fingerprint: sum of a 32-bit hash of each row's evaluated
    -- values (score to 1e-9). Same value on every engine for the same rows.
    SUM({row_hash}) AS content_hash
FROM win
GROUP BY model_version
ORDER BY model_version
