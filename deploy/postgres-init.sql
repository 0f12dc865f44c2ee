-- Runs once, when the postgres service starts with an empty data volume
-- (/docker-entrypoint-initdb.d). The Dagster database ($DAGSTER_PG_DB) is created by the image
-- from POSTGRES_DB; this adds, owned by the same role:
--   mlflow   the MLflow backend store;
--   results  the results store of the decision log (EVAL_RESULTS_STORE_URL); the pipeline
--            creates its "decisions" table on first use.
-- On a server that is already initialized, or the external server of a Kubernetes deployment,
-- run it once by hand: psql -h HOST -U USER -d postgres -f deploy/postgres-init.sql
CREATE DATABASE mlflow;
CREATE DATABASE results;
