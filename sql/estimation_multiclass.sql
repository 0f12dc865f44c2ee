-- Label-free performance estimation for the multiclass task (CBPE, docs/estimation.md): two
-- per-class score histograms in one query, on the equal-width fine bins of each class's score.
--   current:   slice x version x predicted class x class c x fine bin of class c's score, over
--              EVERY row of the evaluated week, labeled or not: rows and score sum (each row
--              once per declared class: the expected confusion's columns are the predicted
--              classes, its rows the classes whose calibrated probability is summed);
--   reference: version x class c x (label == c) x fine bin of class c's score over the LABELED
--              rows of the reference weeks: rows and score sum (the one-vs-rest isotonic
--              calibration of each class).
-- A class score outside [0, 1] (or NaN), and a label or prediction outside the declared
-- classes, leave that row's cell out.
WITH win AS (
{window}
),
ref AS (
{reference}
),
current_rows AS (
    SELECT
        {slice_passthrough}model_version,
        {predicted_class} AS predicted_class{score_passthrough}
    FROM win
),
current_unpivoted AS (
    SELECT
        {slice_passthrough}model_version,
        predicted_class,
        classes.class_index AS class_index,
        {class_score} AS class_score
    FROM current_rows
    CROSS JOIN (VALUES {class_values}) AS classes(class_index)
    WHERE predicted_class IS NOT NULL
),
current_cells AS (
    SELECT
        {slice_passthrough}model_version,
        predicted_class,
        class_index,
        GREATEST(0, LEAST({fine_bins} - 1, CAST(FLOOR(class_score * {fine_bins}) AS INTEGER)))
            AS fine_bin,
        class_score
    FROM current_unpivoted
    WHERE class_score >= 0 AND class_score <= 1
),
grouped AS (
    SELECT {slice_passthrough}model_version, predicted_class, class_index, fine_bin,
        COUNT(*) AS n, {score_sum} AS score_sum
    FROM current_cells
    GROUP BY {slice_passthrough}model_version, predicted_class, class_index, fine_bin
),
reference_rows AS (
    SELECT model_version, {label_class} AS label_class{score_passthrough}
    FROM ref
),
reference_cells AS (
    SELECT
        model_version,
        classes.class_index AS class_index,
        CASE WHEN label_class = classes.class_index THEN 1 ELSE 0 END AS is_class,
        {class_score} AS class_score
    FROM reference_rows
    CROSS JOIN (VALUES {class_values}) AS classes(class_index)
    WHERE label_class IS NOT NULL
)
SELECT
    'current' AS part,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    predicted_class,
    class_index,
    CAST(NULL AS INTEGER) AS is_class,
    fine_bin,
    SUM(n) AS n,
    CAST({total_score_sum} AS {double}) / 1e12 AS score_sum
FROM grouped
GROUP BY GROUPING SETS (
{current_sets}
)
UNION ALL
SELECT
    'reference' AS part,
    -1 AS grouping_id,
    {null_slices}
    model_version,
    CAST(NULL AS INTEGER) AS predicted_class,
    class_index,
    is_class,
    GREATEST(0, LEAST({fine_bins} - 1, CAST(FLOOR(class_score * {fine_bins}) AS INTEGER)))
        AS fine_bin,
    COUNT(*) AS n,
    CAST({reference_score_sum} AS {double}) / 1e12 AS score_sum
FROM reference_cells
WHERE class_score >= 0 AND class_score <= 1
GROUP BY model_version, class_index, is_class,
    GREATEST(0, LEAST({fine_bins} - 1, CAST(FLOOR(class_score * {fine_bins}) AS INTEGER)))
