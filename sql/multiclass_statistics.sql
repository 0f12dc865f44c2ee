-- The multiclass task's one scan of the window (ARCHITECTURE principle 1), over every slice
-- cross, version and resample bucket:
--   confusion rows: label class x predicted class (indices in the declared class order; a NULL
--                   label class is a row whose label has not arrived), with the fixed-point
--                   sum of -log(clip(p_true, eps, 1 - eps)) when class scores are logged;
--   rank rows:      labeled rows by the rank of the true class's score among the row's class
--                   scores (1 + the classes scored higher, or equal and later in the declared
--                   order: scikit-learn's top_k_accuracy_score tie rule); only with scores.
-- Sums of doubles are fixed point (integers of 1e-12): bit-identical run to run.
WITH win AS (
{window}
),
classed AS (
    SELECT
        model_version,
        {slice_passthrough}
        {bucket_expr} AS bucket,
        {label_class} AS label_class,
        {predicted_class} AS predicted_class{score_passthrough}
    FROM win
),
scored AS (
    SELECT *, {true_score} AS true_score FROM classed
),
cells AS (
    SELECT
        model_version,
        {slice_passthrough}
        bucket,
        label_class,
        predicted_class,
        {true_rank} AS true_rank,
        -LN(GREATEST(LEAST(true_score, {one_minus_eps}), {eps})) AS log_loss_term
    FROM scored
)
SELECT
    'confusion' AS family,
    'confusion' AS part,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    bucket,
    label_class,
    predicted_class,
    CAST(NULL AS INTEGER) AS true_rank,
    COUNT(*) AS n,
    CAST({log_loss_sum} AS {double}) / 1e12 AS log_loss_sum
FROM cells
GROUP BY GROUPING SETS (
{confusion_sets}
)
UNION ALL
SELECT
    'confusion' AS family,
    'rank' AS part,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    bucket,
    CAST(NULL AS INTEGER) AS label_class,
    CAST(NULL AS INTEGER) AS predicted_class,
    true_rank,
    COUNT(*) AS n,
    CAST(NULL AS {double}) AS log_loss_sum
FROM cells
WHERE label_class IS NOT NULL AND true_rank IS NOT NULL
GROUP BY GROUPING SETS (
{rank_sets}
)
