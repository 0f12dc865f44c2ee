-- One scan of the window yields every number the metrics need (ARCHITECTURE principle 1).
-- Two families share the scan, each over every slice cross:
--   threshold cells: slice x version x label x resample bucket x threshold side, with count,
--                    log-loss sum and squared-error sum: exact accuracy, precision, recall,
--                    F1, log loss and Brier per bucket, for the paired bucket bootstrap;
--   score histogram: slice x version x label x fine score bin, with count and score sum:
--                    ROC AUC, PR AUC and ECE, and their (cell-level) bootstrap.
-- Each family first aggregates at its finest grain (every slice column at once), then forms
-- the slice crosses from that smaller result: the same numbers as grouping the rows directly,
-- in less time. The result size depends on slices, buckets and bins, never on the row count.
-- Sums of doubles are fixed point (integers of 1e-12, converted back at the end): a parallel
-- floating-point SUM adds in a different order on each run, and results must be bit-identical.
--
-- The fine score bins follow the window's labeled scores. Each score falls in a grid cell
-- (score_bins equal-width bins, each cut into sub_cells); when at most score_bins cells are
-- occupied, every cell is its own bin, else cells are grouped into quantile bins of about
-- 1 / score_bins of the labeled rows each, cut again at the equal-width bins' edges (no bin
-- is coarser than either), and a cell holding at least 1 / score_bins of the rows (a point
-- mass) is a bin of its own. Bins nest in the equal-width bins, so calibration and bootstrap
-- bins stay unions of fine bins. A bin is
-- tied when all its labeled rows share one score: its ROC AUC and PR AUC terms are exact.
-- Only integer counts and comparisons place the edges, so every engine draws the same ones.
-- NOT MATERIALIZED: the edges need every labeled score before a row can be binned; reading
-- the window again (a temporary table) costs less than holding all its rows in memory.
WITH win AS {not_materialized}(
{window}
),
cells AS {not_materialized}(
    SELECT
        model_version,
        label,
        {slice_passthrough}
        {bucket_expr} AS bucket,
        CASE WHEN score >= {threshold} THEN 1 ELSE 0 END AS above,
        wide_bin,
        wide_bin * {sub_cells} + GREATEST(0, LEAST({sub_cells} - 1,
            CAST(FLOOR((score * {fine_bins} - wide_bin) * {sub_cells}) AS INTEGER)))
            AS grid_cell,
        score,
        -(label * LN(GREATEST(score, {eps})) + (1 - label) * LN(GREATEST(1 - score, {eps})))
            AS log_loss_term,
        (score - label) * (score - label) AS squared_error
    FROM (
        SELECT
            *,
            GREATEST(0, LEAST({fine_bins} - 1, CAST(FLOOR(score * {fine_bins}) AS INTEGER)))
                AS wide_bin
        FROM win
    ) AS binned
),
grid AS (
    SELECT grid_cell, wide_bin, COUNT(*) AS n, MIN(score) AS low, MAX(score) AS high
    FROM cells
    WHERE label IS NOT NULL
    GROUP BY grid_cell, wide_bin
),
ranked AS (
    SELECT
        grid_cell, wide_bin, low, high,
        CAST(FLOOR(wide_bin / {coarse_ratio}) AS INTEGER) AS coarse_bin,
        -- the quantile slot of the cell's first row, and whether the cell fills a slot alone
        CAST(FLOOR(CAST(SUM(n) OVER (ORDER BY grid_cell
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - n AS {double})
            * {fine_bins} / CAST(SUM(n) OVER () AS {double})) AS BIGINT) AS slot,
        CASE WHEN n * {fine_bins} >= SUM(n) OVER () THEN 1 ELSE 0 END AS heavy,
        COUNT(*) OVER () AS occupied
    FROM grid
),
marked AS (
    SELECT
        grid_cell, coarse_bin, low, high,
        -- a new bin starts at every occupied cell when there are few, else at each new
        -- quantile slot or equal-width bin (so no bin is coarser than either), and around
        -- every heavy cell (a point mass)
        CASE
            WHEN occupied <= {fine_bins} THEN 1
            WHEN LAG(grid_cell) OVER (ORDER BY grid_cell) IS NULL THEN 1
            WHEN slot <> LAG(slot) OVER (ORDER BY grid_cell) THEN 1
            WHEN wide_bin <> LAG(wide_bin) OVER (ORDER BY grid_cell) THEN 1
            WHEN heavy = 1 OR LAG(heavy) OVER (ORDER BY grid_cell) = 1 THEN 1
            ELSE 0
        END AS starts
    FROM ranked
),
placed AS (
    SELECT
        grid_cell, coarse_bin, low, high,
        SUM(starts) OVER (ORDER BY grid_cell ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            - 1 AS fine_bin
    FROM marked
),
edges AS (
    SELECT
        grid_cell, coarse_bin, fine_bin,
        CASE WHEN MIN(low) OVER (PARTITION BY fine_bin) = MAX(high) OVER (PARTITION BY fine_bin)
            THEN 1 ELSE 0 END AS tied
    FROM placed
),
bins AS (
    SELECT DISTINCT fine_bin, coarse_bin, tied FROM edges
),
threshold_cells AS (
    SELECT {slice_passthrough}model_version, label, bucket, above,
        COUNT(*) AS n,
        {log_loss_sum} AS log_loss_sum,
        {squared_error_sum} AS squared_error_sum
    FROM cells
    GROUP BY {slice_passthrough}model_version, label, bucket, above
),
histogram_cells AS (
    SELECT {slice_passthrough}model_version, label, fine_bin, COUNT(*) AS n,
        {score_sum} AS score_sum
    FROM cells
    JOIN edges ON edges.grid_cell = cells.grid_cell
    GROUP BY {slice_passthrough}model_version, label, fine_bin
)
SELECT
    'threshold' AS family,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    label,
    bucket,
    above,
    CAST(NULL AS INTEGER) AS fine_bin,
    CAST(NULL AS INTEGER) AS coarse_bin,
    CAST(NULL AS INTEGER) AS tied,
    SUM(n) AS n,
    CAST(NULL AS {double}) AS score_sum,
    CAST({total_log_loss_sum} AS {double}) / 1e12 AS log_loss_sum,
    CAST({total_squared_error_sum} AS {double}) / 1e12 AS squared_error_sum
FROM threshold_cells
GROUP BY GROUPING SETS (
{threshold_sets}
)
UNION ALL
SELECT
    'histogram' AS family,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    label,
    CAST(NULL AS BIGINT) AS bucket,
    CAST(NULL AS INTEGER) AS above,
    fine_bin,
    CAST(NULL AS INTEGER) AS coarse_bin,
    CAST(NULL AS INTEGER) AS tied,
    SUM(n) AS n,
    CAST({total_score_sum} AS {double}) / 1e12 AS score_sum,
    CAST(NULL AS {double}) AS log_loss_sum,
    CAST(NULL AS {double}) AS squared_error_sum
FROM histogram_cells
GROUP BY GROUPING SETS (
{histogram_sets}
)
UNION ALL
-- The bins themselves, once each (in no slice group): bootstrap bin and whether tied.
SELECT
    'histogram' AS family,
    -1 AS grouping_id,
    {slice_nulls}
    NULL AS model_version,
    NULL AS label,
    CAST(NULL AS BIGINT) AS bucket,
    CAST(NULL AS INTEGER) AS above,
    fine_bin,
    coarse_bin,
    tied,
    CAST(NULL AS BIGINT) AS n,
    CAST(NULL AS {double}) AS score_sum,
    CAST(NULL AS {double}) AS log_loss_sum,
    CAST(NULL AS {double}) AS squared_error_sum
FROM bins
