# MLflow tracking + registry server for docker compose: the official image plus the PostgreSQL
# driver (backend store) and boto3 (S3 / MinIO artifact store).
ARG MLFLOW_VERSION=3.17.2
FROM ghcr.io/mlflow/mlflow:v${MLFLOW_VERSION}
RUN pip install --no-cache-dir "psycopg2-binary>=2.9" "boto3>=1.43"
