-- The regression task's one scan of the window (ARCHITECTURE principle 1), two families:
--   regression: per slice cross, version and resample bucket, the rows with a label (n) and
--     without (n_unlabeled), and the exact sums of e = prediction - label, |e|, e^2, the
--     centred label u = label - c and u^2 (c: the window's mean label, one number for every
--     cell, so SST = sum u^2 - (sum u)^2 / n keeps its digits when labels sit far from 0);
--     for MAPE, the labeled rows with y <> 0, the sum of |e| / |y| over them and the rows with
--     y = 0 (excluded); with a logged interval, the labeled rows that have one, those whose
--     label lies in it, and the sum of its widths.
--   error_histogram: per slice cross and version, labeled rows per log-spaced bin of |e|
--     ({bins_per_octave} bins per factor of 2; |e| = 0 in bin {zero_bin}) with the bin's
--     smallest and largest |e|: the median absolute error within a proven bound (only
--     when a metric of the spec reads it: {histogram_wanted}).
-- Sums use the dialect's exact sum (order-independent, so results are bit-identical run to
-- run): predictions and labels are unbounded, so the binary task's fixed point could overflow.
WITH win AS (
{window}
),
shift AS (
    SELECT COALESCE(CAST({label_total} AS {double}) / NULLIF(COUNT(label), 0), 0) AS c
    FROM win
),
cells AS (
    SELECT
        model_version,
        {slice_passthrough}
        {bucket_expr} AS bucket,
        label,
        prediction - label AS e,
        label - shift.c AS u{interval_columns}
    FROM win CROSS JOIN shift
),
errors AS (
    SELECT
        model_version,
        {slice_passthrough}
        ABS(e) AS abs_error,
        CASE WHEN e = 0 THEN {zero_bin}
             ELSE CAST(FLOOR(LN(ABS(e)) * {bin_scale}) AS BIGINT)
        END AS error_bin
    FROM cells
    WHERE label IS NOT NULL AND {histogram_wanted}
)
SELECT
    'regression' AS family,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    bucket,
    CAST(NULL AS BIGINT) AS error_bin,
    COUNT(label) AS n,
    COUNT(*) - COUNT(label) AS n_unlabeled,
    SUM(CASE WHEN label <> 0 THEN 1 ELSE 0 END) AS n_nonzero_label,
    SUM(CASE WHEN label = 0 THEN 1 ELSE 0 END) AS n_zero_label,
    CAST(NULL AS {double}) AS min_abs_error,
    CAST(NULL AS {double}) AS max_abs_error{sums}
FROM cells
GROUP BY GROUPING SETS (
{grouping_sets}
)
UNION ALL
SELECT
    'error_histogram' AS family,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    CAST(NULL AS BIGINT) AS bucket,
    error_bin,
    COUNT(*) AS n,
    0 AS n_unlabeled,
    0 AS n_nonzero_label,
    0 AS n_zero_label,
    MIN(abs_error) AS min_abs_error,
    MAX(abs_error) AS max_abs_error{null_sums}
FROM errors
GROUP BY GROUPING SETS (
{histogram_sets}
)
