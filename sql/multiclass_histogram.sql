-- The multiclass task's per-class score histograms (one-vs-rest ROC AUC), over every slice
-- cross and version: each labeled row once per declared class c, by whether its label is c
-- and by the equal-width fine bin of class c's score. Only when class scores are logged.
WITH win AS (
{window}
),
classed AS (
    SELECT
        model_version,
        {slice_passthrough}
        {label_class} AS label_class{score_passthrough}
    FROM win
),
unpivoted AS (
    SELECT
        model_version,
        {slice_passthrough}
        classes.class_index AS class_index,
        CASE WHEN label_class = classes.class_index THEN 1 ELSE 0 END AS is_class,
        {class_score} AS class_score
    FROM classed
    CROSS JOIN (VALUES {class_values}) AS classes(class_index)
    WHERE label_class IS NOT NULL
)
SELECT
    'class_histogram' AS family,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    class_index,
    is_class,
    GREATEST(0, LEAST({fine_bins} - 1, CAST(FLOOR(class_score * {fine_bins}) AS INTEGER)))
        AS fine_bin,
    COUNT(*) AS n
FROM unpivoted
GROUP BY GROUPING SETS (
{histogram_sets}
)
