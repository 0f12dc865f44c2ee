-- Per-version facts of the window, aggregated in the warehouse: row counts, label outcomes and
-- the content fingerprint. The per-row expectations (ids, scores, label values) run in Great
-- Expectations against the same window (eval_pipelines/expectations.py).
WITH win AS (
{window}
)
SELECT
    model_version,
    COUNT(*) AS n,
    COUNT(label) AS n_labeled,
    -- Empty or blank ids pass NULL and uniqueness checks but identify nothing (and pair
    -- unrelated requests across versions): SUM(CASE WHEN TRIM(CAST(id AS {text})) = '' ...)
    -- for a text id; SUM(0) for an integer or UUID id, which cannot be blank.
    {blank_id} AS n_blank_id,
    SUM(CASE WHEN label_excluded = 'before_prediction' THEN 1 ELSE 0 END)
        AS n_label_before_prediction,
    SUM(CASE WHEN label_excluded = 'too_late' THEN 1 ELSE 0 END) AS n_label_too_late,
    -- Order-independent content fingerprint: sum of a 32-bit hash of each row's evaluated
    -- values (score to 1e-9). Same value on every engine for the same rows.
    {content_hash} AS content_hash
FROM win
GROUP BY model_version
ORDER BY model_version
