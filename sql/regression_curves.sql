-- The regression task's curves (curves.parquet; eval_pipelines/curves.py), one small
-- aggregate of the labeled rows: no statistic family holds the signed error or the
-- prediction by bin. Per slice cross and version:
--   residual rows:  labeled rows per equal-width bin of the signed error e = prediction - label
--                   ({bins} bins over the window's smallest to largest e, the same edges for
--                   every slice and version, so their histograms overlay);
--   predicted rows: labeled rows per equal-width bin of the prediction ({bins} bins over the
--                   window's range), with the exact sums of prediction and label in the bin
--                   (mean prediction vs mean label: predicted vs actual).
-- Each row carries the window's ranges, from which the edges are drawn.
WITH win AS (
{window}
),
labeled AS (
    SELECT model_version, {slice_passthrough}prediction, label, prediction - label AS e
    FROM win
    WHERE label IS NOT NULL
),
ranges AS (
    SELECT MIN(e) AS e_low, MAX(e) AS e_high, MIN(prediction) AS p_low, MAX(prediction) AS p_high
    FROM labeled
),
binned AS (
    SELECT
        model_version,
        {slice_passthrough}prediction,
        label,
        e_low, e_high, p_low, p_high,
        CASE WHEN e_high > e_low THEN GREATEST(0, LEAST({bins} - 1,
            CAST(FLOOR((e - e_low) / (e_high - e_low) * {bins}) AS INTEGER))) ELSE 0 END
            AS residual_bin,
        CASE WHEN p_high > p_low THEN GREATEST(0, LEAST({bins} - 1,
            CAST(FLOOR((prediction - p_low) / (p_high - p_low) * {bins}) AS INTEGER))) ELSE 0 END
            AS prediction_bin
    FROM labeled CROSS JOIN ranges
)
SELECT
    'residual' AS kind,
    {grouping_id} AS grouping_id,
    {slice_outputs}model_version,
    residual_bin AS bin,
    COUNT(*) AS n,
    CAST(NULL AS {double}) AS prediction_sum,
    CAST(NULL AS {double}) AS label_sum,
    MIN(e_low) AS low,
    MIN(e_high) AS high
FROM binned
GROUP BY GROUPING SETS (
{residual_sets}
)
UNION ALL
SELECT
    'predicted' AS kind,
    {grouping_id} AS grouping_id,
    {slice_outputs}model_version,
    prediction_bin AS bin,
    COUNT(*) AS n,
    CAST({prediction_sum} AS {double}) AS prediction_sum,
    CAST({label_sum} AS {double}) AS label_sum,
    MIN(p_low) AS low,
    MIN(p_high) AS high
FROM binned
GROUP BY GROUPING SETS (
{predicted_sets}
)
