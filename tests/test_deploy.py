"""The deployment files in deploy/: they parse, match Dagster's own schemas, agree with each other
and the code, carry no secrets; and the production instance config runs a real job on PostgreSQL.

Nothing here needs Docker, Helm or Kubernetes. The PostgreSQL instance test needs the server
binaries (``postgres_url`` fixture) and the ``dagster-postgres`` package; it skips without them.
"""

import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import ConcurrencyConfig, dagster_instance_config
from dagster._core.run_coordinator.queued_run_coordinator import RunQueueConfig
from dagster._serdes.config_class import ConfigurableClassData

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
INSTANCE_CONFIGS = ("dagster.yaml", "dagster.local.yaml")
PG_ENV_KEYS = {  # dagster.yaml postgres_db key -> environment variable
    "hostname": "DAGSTER_PG_HOST",
    "port": "DAGSTER_PG_PORT",
    "username": "DAGSTER_PG_USER",
    "password": "DAGSTER_PG_PASSWORD",
    "db_name": "DAGSTER_PG_DB",
}
# Variables the code location reads; each must reach the code-location container.
CODE_LOCATION_ENV = (
    "EVAL_WAREHOUSE_URL",
    "EVAL_ARTIFACTS_ROOT",
    "EVAL_RESULTS_STORE_URL",
    "EVAL_MAX_CONCURRENT_STEPS",
    "EVAL_SPECS_DIR",
    "EVAL_SCHEDULE_CRON",
    "EVAL_ALERT_WEBHOOK_URL",
    "MLFLOW_TRACKING_URI",
    "EVAL_MLFLOW_ARTIFACT_LOCATION",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    *PG_ENV_KEYS.values(),
)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _compose() -> dict[str, Any]:
    return _load(COMPOSE)


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in ENV_EXAMPLE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example: not KEY=VALUE: {raw!r}"
        values[key.strip()] = value.strip().strip("\"'")
    return values


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _dockerfile_cmd() -> list[str]:
    cmds = [rest for word, rest in _dockerfile_instructions() if word == "CMD"]
    assert len(cmds) == 1, "Dockerfile needs exactly one CMD"
    return json.loads(cmds[0])  # exec form


def _option(args: list[str], *names: str) -> str:
    for i, arg in enumerate(args):
        if arg in names:
            return args[i + 1]
    raise AssertionError(f"none of {names} in {args}")


def _exposed_port() -> int:
    ports = [rest for word, rest in _dockerfile_instructions() if word == "EXPOSE"]
    assert len(ports) == 1
    return int(ports[0])


# --------------------------------------------------------------------------------------------
# Every YAML file parses
# --------------------------------------------------------------------------------------------


def test_every_yaml_file_in_deploy_parses():
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    names = {p.relative_to(DEPLOY).as_posix() for p in files}
    assert {
        "dagster.yaml",
        "dagster.local.yaml",
        "docker-compose.yaml",
        "workspace.docker.yaml",
        "helm/values.yaml",
    } <= names
    for path in files:
        assert isinstance(_load(path), dict), f"{path} is not a YAML mapping"


# --------------------------------------------------------------------------------------------
# Dagster instance configs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INSTANCE_CONFIGS)
def test_instance_config_validates_against_dagster_schema(name):
    config, custom_class = dagster_instance_config(str(DEPLOY), name)
    assert custom_class is None
    assert config["telemetry"] == {"enabled": False}
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    # What DagsterInstance does with the concurrency block (raises on conflicting settings).
    run_queue = None
    if "run_coordinator" in config:
        rc = config["run_coordinator"]
        data = ConfigurableClassData(rc["module"], rc["class"], yaml.safe_dump(rc["config"]))
        coordinator = data.rehydrate(object)  # imports the class and validates its config
        run_queue = coordinator.get_run_queue_config()
        assert isinstance(run_queue, RunQueueConfig)
    ConcurrencyConfig.from_concurrency_settings(config["concurrency"], run_queue)


def test_instance_schema_check_is_real(tmp_path):
    # The same validation must reject a misspelt key and a run limit given in two places.
    good = _load(DEPLOY / "dagster.yaml")
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({**good, "run_monitorng": {}}))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path), "typo.yaml")
    both = yaml.safe_load(yaml.safe_dump(good))
    both["run_coordinator"]["config"]["max_concurrent_runs"] = 3
    (tmp_path / "both.yaml").write_text(yaml.safe_dump(both))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path), "both.yaml")


def test_production_instance_uses_postgres_with_credentials_from_env():
    config = _load(DEPLOY / "dagster.yaml")
    assert set(config["storage"]) == {"postgres"}
    db = config["storage"]["postgres"]["postgres_db"]
    assert db == {
        **{key: {"env": var} for key, var in PG_ENV_KEYS.items()},
        # SQLAlchemy >= 2.1 maps a bare postgresql:// to psycopg 3; dagster-postgres has psycopg2.
        "scheme": "postgresql+psycopg2",
    }
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    runs = config["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] > 0
    assert runs["tag_concurrency_limits"]
    assert config["run_monitoring"]["enabled"] is True


def test_local_instance_keeps_default_storage_and_one_warehouse_slot():
    config = _load(DEPLOY / "dagster.local.yaml")
    assert "storage" not in config  # SQLite under $DAGSTER_HOME
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert "warehouse" in (DEPLOY / "dagster.local.yaml").read_text()


def test_assets_use_the_warehouse_pool_the_configs_talk_about():
    from assets.definitions import defs

    pools = {
        getattr(getattr(a, "node_def", None), "pool", None)
        for a in [*(defs.assets or []), *(defs.asset_checks or [])]
    }
    assert "warehouse" in pools, pools


@pytest.mark.postgres
def test_production_instance_runs_a_job_on_real_postgres(postgres_url, tmp_path, monkeypatch):
    pytest.importorskip(
        "dagster_postgres",
        reason="dagster-postgres is not installed (pip install dagster-postgres matching dagster)",
    )
    import psycopg2
    import sqlalchemy as sa
    from dagster import DagsterInstance, asset, materialize
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    db_name = f"dagster_deploy_{uuid.uuid4().hex[:8]}"
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = psycopg2.connect(admin_dsn)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{db_name}"')

        env = {
            "DAGSTER_PG_HOST": url.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(url.port or 5432),
            "DAGSTER_PG_USER": url.username or "postgres",
            "DAGSTER_PG_PASSWORD": url.password or "",
            "DAGSTER_PG_DB": db_name,
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
        monkeypatch.setenv("DAGSTER_HOME", str(home))

        @asset(pool="warehouse")
        def deploy_smoke() -> int:
            return 1

        instance = DagsterInstance.from_config(str(home))
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"

            result = materialize([deploy_smoke], instance=instance)
            assert result.success
            records = instance.get_run_records()
            assert [r.dagster_run.run_id for r in records] == [result.run_id]
            assert instance.get_latest_materialization_event(deploy_smoke.key) is not None
            # The warehouse pool got the configured default limit, kept in PostgreSQL.
            info = instance.event_log_storage.get_concurrency_info("warehouse")
            assert info.slot_count == 2
        finally:
            instance.dispose()

        engine = sa.create_engine(url.set(database=db_name))
        try:
            tables = set(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert {"runs", "event_logs", "jobs", "concurrency_limits"} <= tables
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


def test_dockerfile_cmd_serves_the_code_location():
    import importlib

    from dagster import Definitions
    from dagster._cli.code_server import start_command

    cmd = _dockerfile_cmd()
    assert cmd[:3] == ["dagster", "code-server", "start"]
    start_command.make_context("start", cmd[3:])  # the 1.13 CLI accepts these flags
    module = importlib.import_module(_option(cmd, "-m", "--module-name"))
    assert isinstance(getattr(module, _option(cmd, "-a", "--attribute")), Definitions)
    assert _option(cmd, "-h", "--host") == "0.0.0.0"
    assert int(_option(cmd, "-p", "--port")) == _exposed_port()


def test_dockerfile_installs_project_as_non_root_with_matching_dagster_libs():
    instructions = _dockerfile_instructions()
    words = [w for w, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [rest for w, rest in instructions if w == "USER"]
    assert users and users[-1] not in ("root", "0")
    copies = " ".join(rest for w, rest in instructions if w == "COPY")
    assert re.search(r"\bevals\b", copies) and re.search(r"\bsql\b", copies)
    runs = " ".join(rest for w, rest in instructions if w == "RUN")
    assert "pip install /tmp/src" in runs and "dagster-postgres" in runs
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    args = dict(rest.split("=", 1) for w, rest in instructions if w == "ARG" and "=" in rest)
    # dagster-postgres 0.N.P is released with dagster 1.(N-16).P only.
    major, minor, patch = (int(x) for x in args["DAGSTER_VERSION"].split("."))
    lib_major, lib_minor, lib_patch = (int(x) for x in args["DAGSTER_LIBS_VERSION"].split("."))
    assert (lib_major, lib_minor - 16, lib_patch) == (major - 1, minor, patch)
    env_line = " ".join(rest for w, rest in instructions if w == "ENV")
    assert "EVAL_SPECS_DIR=/opt/dagster/app/evals" in env_line
    assert "DAGSTER_HOME=" in env_line


# --------------------------------------------------------------------------------------------
# docker compose
# --------------------------------------------------------------------------------------------

COMPOSE_SERVICES = {
    "postgres",
    "minio",
    "minio-setup",
    "mlflow",
    "code-location",
    "webserver",
    "daemon",
}


def test_compose_has_every_service_with_healthy_dependencies():
    services = _compose()["services"]
    assert set(services) >= COMPOSE_SERVICES
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
            else:
                assert condition == "service_completed_successfully", (name, dep, condition)
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["code-location"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    build = services["code-location"]["build"]
    assert build == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    mlflow_build = services["mlflow"]["build"]
    assert (COMPOSE.parent / mlflow_build["context"] / mlflow_build["dockerfile"]).is_file()


def test_compose_mounts_instance_and_workspace_files_that_exist():
    services = _compose()["services"]
    dagster_home = "/opt/dagster/dagster_home"
    for name in ("code-location", "webserver", "daemon"):
        volumes = services[name]["volumes"]
        assert f"./dagster.yaml:{dagster_home}/dagster.yaml:ro" in volumes, name
        assert services[name]["image"] == services["code-location"]["image"]
        env = services[name]["environment"]
        assert set(PG_ENV_KEYS.values()) <= set(env), name
    for name in ("webserver", "daemon"):
        assert (
            f"./workspace.docker.yaml:{dagster_home}/workspace.yaml:ro"
            in (services[name]["volumes"])
        )
        command = services[name]["command"]
        assert _option(command, "-w", "--workspace") == f"{dagster_home}/workspace.yaml"
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and source != "../data":
                assert (COMPOSE.parent / source).exists(), source
    setup = " ".join(services["postgres"]["volumes"])
    assert "postgres-init.sql:/docker-entrypoint-initdb.d/" in setup
    assert "CREATE DATABASE mlflow" in (DEPLOY / "postgres-init.sql").read_text()


def test_code_location_gets_every_variable_the_code_reads():
    env = _compose()["services"]["code-location"]["environment"]
    missing = [var for var in CODE_LOCATION_ENV if var not in env]
    assert not missing


def test_every_compose_variable_is_documented_in_env_example():
    lines = COMPOSE.read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used, "compose uses no ${VAR}: the regex is broken"
    # A bare $VAR would also be interpolated by compose; shell variables must be written $$VAR.
    assert not re.findall(r"(?<!\$)\$(?=[A-Za-z_])", text)
    documented = set(_env_example())
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"
    # DAGSTER_PG_HOST / DAGSTER_PG_PORT are fixed to the postgres service in compose.
    assert set(CODE_LOCATION_ENV) - {"DAGSTER_PG_HOST", "DAGSTER_PG_PORT"} <= documented


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\$\{[^{}]*\})*))?\}")


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` (default interpolated too) and ``${VAR:?err}``,
    as the compose specification defines them (one level of nesting is enough here)."""

    def value(match: re.Match) -> str:
        name, operator, operand = match.groups()
        found = env.get(name)
        if operator == ":-" and not found:
            return _interpolate(operand, env)
        if operator == ":?" and not found:
            raise AssertionError(f"compose would refuse to start: {operand}")
        return found or ""

    return _INTERPOLATION.sub(value, text)


def test_interpolation_follows_compose_rules():
    env = {"A": "a", "EMPTY": ""}
    assert _interpolate("${A}-${B:-x${A}y}-${EMPTY:-d}", env) == "a-xay-d"
    with pytest.raises(AssertionError, match="set it"):
        _interpolate("${B:?set it}", env)


def test_compose_results_store_is_the_results_database_of_the_postgres_service():
    from sqlalchemy.engine import make_url

    env = _env_example()
    assert env["EVAL_RESULTS_STORE_URL"] == ""  # empty: the default below
    services = _compose()["services"]
    url = make_url(
        _interpolate(services["code-location"]["environment"]["EVAL_RESULTS_STORE_URL"], env)
    )
    assert url.drivername == "postgresql+psycopg2"  # dagster-postgres brings psycopg2
    assert (url.host, url.port, url.database) == ("postgres", 5432, "results")
    postgres = services["postgres"]["environment"]
    assert url.username == _interpolate(postgres["POSTGRES_USER"], env)
    assert url.password == _interpolate(postgres["POSTGRES_PASSWORD"], env)
    statements = [
        line.strip().rstrip(";")
        for line in (DEPLOY / "postgres-init.sql").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("--")
    ]
    assert statements == ["CREATE DATABASE mlflow", "CREATE DATABASE results"]
    # The MLflow backend store is another database of the same server.
    mlflow = make_url(
        _interpolate(services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"], env)
    )
    assert (mlflow.host, mlflow.database) == ("postgres", "mlflow")


def test_env_example_holds_placeholders_only():
    values = _env_example()
    for key in ("DAGSTER_PG_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "change-me" in values[key], key
    assert values["EVAL_ALERT_WEBHOOK_URL"] == ""
    assert values["EVAL_SCHEDULE_CRON"] == "0 6 * * 1"
    for key, value in values.items():
        for password in re.findall(r"://[^/\s:@]+:([^@\s]+)@", value):
            assert "change-me" in password, key


def test_workspace_points_at_the_code_location_service_and_port():
    workspace = _load(DEPLOY / "workspace.docker.yaml")
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    assert server["host"] in _compose()["services"]
    assert server["host"] == "code-location"
    assert server["port"] == _exposed_port()
    cmd = _dockerfile_cmd()
    assert server["port"] == int(_option(cmd, "-p", "--port"))
    local = _load(ROOT / "workspace.yaml")["load_from"][0]["python_module"]
    assert server["location_name"] == local["location_name"]
    assert _option(cmd, "-m", "--module-name") == local["module_name"]
    assert _option(cmd, "-a", "--attribute") == local["attribute"]


# --------------------------------------------------------------------------------------------
# No secrets in the files
# --------------------------------------------------------------------------------------------

_SECRET_KEY = re.compile(r"pass(word|wd)?|secret(?!name)|token|access_?key|api_?key|webhook", re.I)
_URL_PASSWORD = re.compile(r"://[^/\s:@]+:([^@\s]+)@")
_REF = re.compile(r"\$\{[^}]*\}|\$\$\{[^}]*\}|\$\$[A-Za-z_][A-Za-z0-9_]*")


def _secret_findings(tree: Any, path: str = "") -> list[str]:
    """Literal secret-looking values in a parsed YAML tree (``${...}`` / ``{env: X}`` are fine)."""
    findings: list[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            where = f"{path}.{key}"
            if isinstance(value, dict | list):
                findings += _secret_findings(value, where)
                continue
            if isinstance(value, bool):
                continue
            text = "" if value is None else _REF.sub("", str(value)).strip()
            if _SECRET_KEY.search(str(key)) and text not in ("", '""', "''"):
                findings.append(f"{where}: {value!r}")
            elif isinstance(value, str):
                findings += [f"{where}: {value!r}" for pw in _URL_PASSWORD.findall(text) if pw]
    elif isinstance(tree, list):
        for i, item in enumerate(tree):
            if isinstance(item, dict | list):
                findings += _secret_findings(item, f"{path}[{i}]")
            elif isinstance(item, str):
                for part in re.split(r"\s+", item):
                    key, sep, value = part.partition("=")
                    if sep and _SECRET_KEY.search(key) and _REF.sub("", value).strip():
                        findings.append(f"{path}[{i}]: {item!r}")
                findings += [f"{path}[{i}]: {item!r}" for _ in _URL_PASSWORD.findall(item)]
    return findings


def test_secret_scanner_catches_literals():
    leaked = {
        "a": {"password": "hunter2"},
        "b": {"POSTGRES_PASSWORD": "x"},
        "c": {"url": "postgresql://u:pw@h/db"},
        "d": ["--password=abc"],
        "e": {"AWS_SECRET_ACCESS_KEY": "AKIA-ish"},
    }
    assert len(_secret_findings(leaked)) == 5
    fine = {
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "POSTGRES_PASSWORD": "${DAGSTER_PG_PASSWORD:?set it}",
        "url": "postgresql://${U}:${P:?x}@postgres:5432/mlflow",
        "postgresqlSecretName": "dagster-postgresql-secret",
        "postgresqlPassword": "",
        "envSecrets": [{"name": "eval-pipelines-env"}],
    }
    assert _secret_findings(fine) == []


@pytest.mark.parametrize(
    "relative",
    ["docker-compose.yaml", "dagster.yaml", "dagster.local.yaml", "helm/values.yaml"],
)
def test_no_literal_secrets(relative):
    assert _secret_findings(_load(DEPLOY / relative)) == []


def test_dockerfiles_hold_no_secrets():
    for path in (DOCKERFILE, DEPLOY / "mlflow.Dockerfile"):
        text = path.read_text()
        assert not re.search(r"(PASSWORD|SECRET|TOKEN)\w*\s*=", text, re.I), path
        assert not _URL_PASSWORD.search(text), path


# --------------------------------------------------------------------------------------------
# Helm values (official dagster/dagster chart, 1.13)
# --------------------------------------------------------------------------------------------
# Field names copied from the chart's pydantic schema (helm/dagster/schema/schema/charts/...
# in dagster-io/dagster): a misspelt key would otherwise be ignored silently by Helm.

_CHART_TOP = {
    "dagsterWebserver", "dagster-user-deployments", "postgresql",
    "generatePostgresqlPasswordSecret", "generateCeleryConfigSecret", "rabbitmq", "redis",
    "flower", "ingress", "imagePullSecrets", "computeLogManager", "scheduler", "runLauncher",
    "pythonLogs", "dagsterDaemon", "busybox", "migrate", "telemetry", "serviceAccount",
    "global", "retention", "concurrency", "additionalInstanceConfig",
}  # fmt: skip
_CHART_USER_DEPLOYMENT = {
    "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns",
    "deploymentNamespace", "port", "replicaCount", "env", "envConfigMaps", "envSecrets",
    "annotations", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
    "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe", "labels",
    "volumeMounts", "volumes", "schedulerName", "initContainers", "sidecarContainers",
    "deploymentStrategy",
}  # fmt: skip
_CHART_K8S_RUN_LAUNCHER = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
    "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
    "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig",
}  # fmt: skip
_CHART_DAEMON = {
    "enabled", "image", "runCoordinator", "heartbeatTolerance", "env", "envConfigMaps",
    "envSecrets", "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations",
    "podSecurityContext", "securityContext", "resources", "checkDbReadyInitContainer",
    "livenessProbe", "readinessProbe", "startupProbe", "annotations", "runMonitoring",
    "runRetries", "sensors", "schedules", "backfills", "schedulerName", "logFormat",
    "volumeMounts", "volumes", "initContainerResources", "extraContainers",
    "extraPrependedInitContainers",
}  # fmt: skip
_CHART_QUEUED_RUN_COORDINATOR = {
    "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds", "dequeueNumWorkers",
    "dequeueUseThreads", "blockOpConcurrencyLimitedRuns",
}  # fmt: skip
_CHART_POSTGRESQL = {
    "image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
    "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service", "pool",
}  # fmt: skip


def test_helm_values_use_only_chart_keys():
    values = _load(HELM_VALUES)
    assert set(values) <= _CHART_TOP, set(values) - _CHART_TOP
    user = values["dagster-user-deployments"]
    assert set(user) <= {"enabled", "enableSubchart", "imagePullSecrets", "deployments"}
    for deployment in user["deployments"]:
        assert set(deployment) <= _CHART_USER_DEPLOYMENT, set(deployment) - _CHART_USER_DEPLOYMENT
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert set(launcher) <= _CHART_K8S_RUN_LAUNCHER, set(launcher) - _CHART_K8S_RUN_LAUNCHER
    daemon = values["dagsterDaemon"]
    assert set(daemon) <= _CHART_DAEMON, set(daemon) - _CHART_DAEMON
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"] or {}
    assert set(queued) <= _CHART_QUEUED_RUN_COORDINATOR
    assert set(values["postgresql"]) <= _CHART_POSTGRESQL
    concurrency = values["concurrency"]
    assert set(concurrency) <= {"enabled", "pools", "runs"}
    assert set(concurrency["pools"]) <= {"defaultLimit", "granularity", "opGranularityRunBuffer"}
    assert set(concurrency["runs"]) <= {"maxConcurrentRuns", "tagConcurrencyLimits"}
    assert set(values["global"]) <= {
        "postgresqlSecretName",
        "dagsterHome",
        "serviceAccountName",
        "celeryConfigSecretName",
        "dagsterInstanceConfigMap",
    }


def test_helm_values_deploy_our_image_with_external_postgres_and_per_run_pods():
    values = _load(HELM_VALUES)
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    cmd = _dockerfile_cmd()
    args = deployment["codeServerArgs"]
    assert _option(args, "-m") == _option(cmd, "-m", "--module-name")
    assert _option(args, "-a") == _option(cmd, "-a", "--attribute")
    assert deployment["port"] == _exposed_port()
    assert deployment["envSecrets"] == [{"name": "eval-pipelines-env"}]
    env = deployment["env"]
    assert "EVAL_WAREHOUSE_URL" not in env and "AWS_SECRET_ACCESS_KEY" not in env  # secrets
    assert env["EVAL_SPECS_DIR"] == "/opt/dagster/app/evals"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    resources = values["runLauncher"]["config"]["k8sRunLauncher"]["resources"]
    assert resources["requests"] and resources["limits"]
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    assert values["telemetry"] == {"enabled": False}


# Environment variables that hold credentials: on Kubernetes only ever from a Secret.
SECRET_ENV = {
    "EVAL_WAREHOUSE_URL",
    "EVAL_RESULTS_STORE_URL",
    "EVAL_ALERT_WEBHOOK_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}


def _helm_commands() -> str:
    """The commands in the comment block heading values.yaml, as one string."""
    lines = []
    for line in HELM_VALUES.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines).replace("\\ ", " ")


def test_helm_runs_each_run_in_its_own_pod_from_the_code_location_image():
    values = _load(HELM_VALUES)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["loadInclusterConfig"] is True
    # Runs are Jobs in the release's namespace, where the chart's Role and the Secrets are.
    namespace = re.search(r"helm upgrade --install \S+ \S+ .*?--namespace (\S+)", _helm_commands())
    assert namespace and launcher["jobNamespace"] == namespace.group(1)
    # The run pod's image is the code location's: no second image to keep in step.
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert "image" not in launcher and deployment["image"]["repository"]
    assert launcher["envSecrets"] == deployment["envSecrets"] == [{"name": "eval-pipelines-env"}]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(launcher["resources"][bound]), bound


def test_helm_credentials_come_from_secrets_only():
    values = _load(HELM_VALUES)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    literal = set(deployment["env"]) | {v.split("=")[0] for v in launcher["envVars"]}
    assert not literal & SECRET_ENV, literal & SECRET_ENV
    assert launcher["envVars"] == [] or all("=" not in v for v in launcher["envVars"])
    # The documented `kubectl create secret` puts every credential in eval-pipelines-env,
    # the results store on the "results" database that postgres-init.sql creates.
    commands = _helm_commands()
    secret = re.search(r"create secret generic eval-pipelines-env (.*?)(?= psql| helm|$)", commands)
    assert secret, commands
    keys = set(re.findall(r"--from-literal=([A-Z_]+)=", secret.group(1)))
    assert keys == SECRET_ENV
    results = re.search(r"EVAL_RESULTS_STORE_URL='([^']+)'", secret.group(1)).group(1)
    assert results.startswith("postgresql+psycopg2://")
    assert results.split("@")[1].split("/")[0] == (
        f"{values['postgresql']['postgresqlHost']}:{values['postgresql']['service']['port']}"
    )
    assert results.split("/")[-1].split("?")[0] == "results"
    assert "-f deploy/postgres-init.sql" in commands
    assert "CREATE DATABASE results" in (DEPLOY / "postgres-init.sql").read_text()
    assert values["global"]["postgresqlSecretName"] in commands


def test_helm_run_queue_and_pool_limits_are_those_of_dagster_yaml():
    values = _load(HELM_VALUES)
    compose = _load(DEPLOY / "dagster.yaml")
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert compose["run_coordinator"]["class"] == "QueuedRunCoordinator"
    helm, ours = values["concurrency"], compose["concurrency"]
    assert helm["enabled"] is True
    assert helm["runs"]["maxConcurrentRuns"] == ours["runs"]["max_concurrent_runs"]
    assert helm["runs"]["tagConcurrencyLimits"] == ours["runs"]["tag_concurrency_limits"]
    assert helm["pools"]["defaultLimit"] == ours["pools"]["default_limit"]
    assert set(helm["pools"]) == {"defaultLimit"} and set(ours["pools"]) == {"default_limit"}
    retries = values["dagsterDaemon"]["runRetries"]
    assert retries["maxRetries"] == compose["run_retries"]["max_retries"]
    assert (
        retries["retryOnAssetOrOpFailure"] == compose["run_retries"]["retry_on_asset_or_op_failure"]
    )


def test_helm_instance_config_as_the_chart_renders_it_is_valid(tmp_path):
    """Render the instance-config parts the chart derives from these values, as its templates
    do (_run-coordinator.tpl, _concurrency.tpl, configmap-instance.yaml), and validate them."""
    values = _load(HELM_VALUES)
    daemon = values["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"] or {}
    coordinator: dict[str, Any] = {
        "module": "dagster.core.run_coordinator",
        "class": "QueuedRunCoordinator",
    }
    if any(v is not None for v in queued.values()):
        # The chart writes max_concurrent_runs: -1 whenever any queued-coordinator key is set.
        rendered = {"max_concurrent_runs": queued.get("maxConcurrentRuns", -1)}
        if queued.get("tagConcurrencyLimits"):
            rendered["tag_concurrency_limits"] = queued["tagConcurrencyLimits"]
        coordinator["config"] = rendered
    concurrency: dict[str, Any] = {}
    pools = values["concurrency"]["pools"]
    runs = values["concurrency"]["runs"]
    if values["concurrency"]["enabled"]:
        concurrency["pools"] = {"default_limit": pools["defaultLimit"]}
        concurrency["runs"] = {
            "max_concurrent_runs": runs["maxConcurrentRuns"],
            "tag_concurrency_limits": runs["tagConcurrencyLimits"],
        }
    monitoring = daemon["runMonitoring"]
    retries = daemon["runRetries"]
    retention = values["retention"]
    instance = {
        "run_coordinator": coordinator,
        "concurrency": concurrency,
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
        },
        "run_retries": {
            "enabled": retries["enabled"],
            "max_retries": retries["maxRetries"],
            "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"],
        },
        "retention": {
            "schedule": {"purge_after_days": retention["schedule"]["purgeAfterDays"]},
            "sensor": {"purge_after_days": retention["sensor"]["purgeAfterDays"]},
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    assert config["concurrency"]["runs"]["max_concurrent_runs"] > 0
