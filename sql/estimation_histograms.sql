-- Label-free performance estimation (CBPE, docs/estimation.md): two score histograms in one
-- query, both on the fine score bins of sufficient_statistics.sql.
--   current:   slice x version x threshold side x fine score bin over EVERY row of the
--              evaluated week, labeled or not: rows and score sum (what is estimated);
--   reference: version x label x fine score bin over the LABELED rows of the reference
--              weeks before it: rows and score sum (what the isotonic calibration is fitted on).
-- Scores outside [0, 1] (or NaN) and labels other than 0/1 are left out of the reference;
-- the evaluated week's scores passed its input checks.
WITH win AS (
{window}
),
ref AS (
{reference}
),
cells AS (
    SELECT
        {slice_passthrough}model_version,
        CASE WHEN score >= {threshold} THEN 1 ELSE 0 END AS above,
        GREATEST(0, LEAST({fine_bins} - 1, CAST(FLOOR(score * {fine_bins}) AS INTEGER)))
            AS fine_bin,
        score
    FROM win
    WHERE score >= 0 AND score <= 1
),
current_cells AS (
    SELECT {slice_passthrough}model_version, above, fine_bin, COUNT(*) AS n,
        {score_sum} AS score_sum
    FROM cells
    GROUP BY {slice_passthrough}model_version, above, fine_bin
),
reference_cells AS (
    SELECT
        model_version,
        label,
        GREATEST(0, LEAST({fine_bins} - 1, CAST(FLOOR(score * {fine_bins}) AS INTEGER)))
            AS fine_bin,
        score
    FROM ref
    WHERE label IN (0, 1) AND score >= 0 AND score <= 1
)
SELECT
    'current' AS part,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    CAST(NULL AS INTEGER) AS label,
    above,
    fine_bin,
    SUM(n) AS n,
    CAST({total_score_sum} AS {double}) / 1e12 AS score_sum
FROM current_cells
GROUP BY GROUPING SETS (
{current_sets}
)
UNION ALL
SELECT
    'reference' AS part,
    -1 AS grouping_id,
    {null_slices}
    model_version,
    label,
    CAST(NULL AS INTEGER) AS above,
    fine_bin,
    COUNT(*) AS n,
    CAST({reference_score_sum} AS {double}) / 1e12 AS score_sum
FROM reference_cells
GROUP BY model_version, label, fine_bin
