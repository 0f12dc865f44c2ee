-- Runs once, when the postgres service starts with an empty data volume
-- (/docker-entrypoint-initdb.d). The Dagster database ($DAGSTER_PG_DB) is created by the image
-- from POSTGRES_DB; this adds the MLflow backend-store database, owned by the same role.
CREATE DATABASE mlflow;
