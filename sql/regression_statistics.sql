-- The regression task's one scan of the window (ARCHITECTURE principle 1): per slice cross,
-- version and resample bucket, the rows with a label (n) and without (n_unlabeled), and the
-- exact sums of e = prediction - label, |e|, e^2, the label y and y^2; for MAPE, the labeled
-- rows with y <> 0, the sum of |e| / |y| over them and the rows with y = 0 (excluded).
-- Sums use the dialect's exact sum (order-independent, so results are bit-identical run to
-- run): predictions and labels are unbounded, so the binary task's fixed point could overflow.
WITH win AS (
{window}
),
cells AS (
    SELECT
        model_version,
        {slice_passthrough}
        {bucket_expr} AS bucket,
        label,
        prediction - label AS e
    FROM win
)
SELECT
    'regression' AS family,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    bucket,
    COUNT(label) AS n,
    COUNT(*) - COUNT(label) AS n_unlabeled,
    SUM(CASE WHEN label <> 0 THEN 1 ELSE 0 END) AS n_nonzero_label,
    SUM(CASE WHEN label = 0 THEN 1 ELSE 0 END) AS n_zero_label{sums}
FROM cells
GROUP BY GROUPING SETS (
{grouping_sets}
)
