-- The multiclass task's per-class score histograms (one-vs-rest ROC AUC), over every slice
-- cross and version: each labeled row once per declared class c, by the bin of class c's
-- score, counting the rows (n) and those whose label is c (n_class), in two grains:
--   fine rows:   the equal-width fine bin (score_bins), no bucket: the point estimate;
--   bucket rows: the coarse bin (confidence.score_bins) per resample bucket: the bucket
--                bootstrap, which keeps a row's classes together and pairs the versions.
-- This result (slices x versions x buckets x classes x bins) is the largest any task returns,
-- so it is a query of its own (no other family's columns on its rows, no family column),
-- with 32-bit keys, and the label-is-c count is a column rather than a grouping key (half
-- the rows). Only when class scores are logged.
WITH win AS (
{window}
),
classed AS (
    SELECT
        model_version,
        {slice_passthrough}
        {bucket_expr} AS bucket,
        {label_class} AS label_class{score_passthrough}
    FROM win
),
unpivoted AS (
    SELECT
        model_version,
        {slice_passthrough}
        bucket,
        classes.class_index AS class_index,
        CASE WHEN label_class = classes.class_index THEN 1 ELSE 0 END AS is_class,
        {class_score} AS class_score
    FROM classed
    CROSS JOIN (VALUES {class_values}) AS classes(class_index)
    WHERE label_class IS NOT NULL
),
binned AS (
    SELECT
        model_version,
        {slice_passthrough}
        bucket,
        class_index,
        is_class,
        GREATEST(0, LEAST({fine_bins} - 1, CAST(FLOOR(class_score * {fine_bins}) AS INTEGER)))
            AS fine_bin,
        GREATEST(0, LEAST({coarse_bins} - 1,
            CAST(FLOOR(class_score * {coarse_bins}) AS INTEGER))) AS coarse_bin
    FROM unpivoted
)
SELECT
    CAST({grouping_id} AS INTEGER) AS grouping_id,
    {slice_outputs}
    model_version,
    CAST(NULL AS INTEGER) AS bucket,
    class_index,
    fine_bin AS bin,
    COUNT(*) AS n,
    CAST(SUM(is_class) AS BIGINT) AS n_class
FROM binned
GROUP BY GROUPING SETS (
{histogram_sets}
)
UNION ALL
SELECT
    CAST({grouping_id} AS INTEGER) AS grouping_id,
    {slice_outputs}
    model_version,
    CAST(bucket AS INTEGER) AS bucket,
    class_index,
    coarse_bin AS bin,
    COUNT(*) AS n,
    CAST(SUM(is_class) AS BIGINT) AS n_class
FROM binned
GROUP BY GROUPING SETS (
{bucket_sets}
)
