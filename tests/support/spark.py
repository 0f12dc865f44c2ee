"""A throwaway real Spark cluster for tests and CI: a standalone master, two workers and a
Spark Connect server on free loopback ports, run from the pyspark package with the machine's
Java 17, plus a loader that puts DuckDB tables into it as parquet tables.

Typical use::

    with SparkCluster() as cluster:           # master + 2 workers (1 core, 1g) + Connect
        load_duckdb_tables("warehouse.duckdb", cluster.url, ["inference_logs", "labels"], dir)

``provide_spark_url()`` yields ``$EVAL_PIPELINES_TEST_SPARK_URL`` instead when it is set; with
no pyspark or no ``java`` it raises ``SparkUnavailable`` (the pytest fixture skips).

As a script (for CI)::

    python -m tests.support.spark start --state DIR   # prints the sc:// URL, returns
    python -m tests.support.spark stop --state DIR    # stops every process it started

``start`` leaves the processes running and writes their ids to ``DIR/cluster.json``; ``stop``
ends exactly those process groups.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "SPARK_URL_ENV",
    "SparkCluster",
    "SparkUnavailable",
    "load_duckdb_tables",
    "provide_spark_url",
]

SPARK_URL_ENV = "EVAL_PIPELINES_TEST_SPARK_URL"
_HOST = "127.0.0.1"
_START_TIMEOUT = 180.0
_STOP_TIMEOUT = 20.0
_CONNECT_READY = "Spark Connect server started at"


class SparkUnavailable(RuntimeError):
    """No pyspark package or no Java: skip, don't fail."""


def spark_home() -> Path:
    """The pyspark package folder, which ships ``bin/spark-class`` and the jars."""
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailable(
            "pyspark is not installed (pip install 'eval-pipelines[spark]')"
        ) from None
    home = Path(pyspark.__file__).resolve().parent
    if not (home / "bin" / "spark-class").exists():
        raise SparkUnavailable(f"{home} has no bin/spark-class")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise SparkUnavailable("no java on PATH (Spark 4.3 needs Java 17 or 21)")
    return home


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((_HOST, port)) == 0


def _stop_group(pid: int) -> None:
    """SIGTERM the process group led by ``pid`` (started with a new session), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child (stopped from another process): poll it
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            finished = 0
        if finished:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class SparkCluster:
    """Master, ``workers`` workers (1 core, 1g each) and a Spark Connect server on loopback.

    Everything it writes (logs, pids, work and warehouse folders) lives under ``base_dir`` (a
    new temporary folder by default, removed on ``stop`` when it made it)."""

    def __init__(self, base_dir: str | os.PathLike[str] | None = None, workers: int = 2) -> None:
        self.home = spark_home()
        self._own_dir = base_dir is None
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="eval-spark-"))
        self.workers = workers
        self.pids: list[int] = []
        self.url = ""

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SPARK_HOME": str(self.home),
            "SPARK_LOCAL_IP": _HOST,
            "SPARK_LOG_DIR": str(self.base / "logs"),
            "SPARK_PID_DIR": str(self.base / "pids"),
            "SPARK_WORKER_DIR": str(self.base / "work"),
            "SPARK_CONF_DIR": str(self.base / "conf"),
            "SPARK_NO_DAEMONIZE": "1",
        }

    def _spawn(self, name: str, args: Sequence[str]) -> tuple[int, Path]:
        log = self.base / "logs" / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                list(args),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, stopped by its id
                cwd=self.base,
            )
        self.pids.append(process.pid)
        return process.pid, log

    def _wait(self, what: str, pid: int, log: Path, ready: object) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if ready():  # type: ignore[operator]
                return
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            time.sleep(0.3)
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        self.stop()
        raise RuntimeError(f"the Spark {what} did not start; its log ends with:\n{tail}")

    def start(self) -> str:
        for folder in ("logs", "pids", "work", "conf", "warehouse"):
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        spark_class = str(self.home / "bin" / "spark-class")
        master_port, master_ui = _free_port(), _free_port()
        master = f"spark://{_HOST}:{master_port}"
        master_args = ["--host", _HOST, "--port", str(master_port), "--webui-port", str(master_ui)]
        pid, log = self._spawn(
            "master", [spark_class, "org.apache.spark.deploy.master.Master", *master_args]
        )
        self._wait("master", pid, log, lambda: _port_open(master_port))
        # Workers and the Connect server start together once the master listens: workers
        # register on their own, and the server's executors arrive when they have.
        worker_logs = []
        for index in range(self.workers):
            work = self.base / "work" / f"worker-{index}"
            work.mkdir(parents=True, exist_ok=True)
            worker_args = ["--host", _HOST, "--cores", "1", "--memory", "1g"]
            worker_args += ["--webui-port", str(_free_port()), "--work-dir", str(work)]
            worker_logs.append(
                self._spawn(
                    f"worker-{index}",
                    [spark_class, "org.apache.spark.deploy.worker.Worker", master, *worker_args],
                )
            )
        connect_port = _free_port()
        confs = {
            "spark.connect.grpc.binding.address": _HOST,
            "spark.connect.grpc.binding.port": str(connect_port),
            "spark.sql.session.timeZone": "UTC",
            "spark.driver.host": _HOST,
            "spark.driver.bindAddress": _HOST,
            "spark.cores.max": str(self.workers),
            "spark.executor.memory": "768m",
            "spark.driver.memory": "768m",
            "spark.ui.enabled": "false",
            "spark.sql.warehouse.dir": str(self.base / "warehouse"),
            "spark.local.dir": str(self.base / "work"),
            # Test data is tiny: few shuffle partitions, and no whole-stage code generation
            # (compiling each query's generated Java costs more than running it). Neither
            # changes a result.
            "spark.sql.shuffle.partitions": "2",
            "spark.sql.codegen.wholeStage": "false",
        }
        args = [str(self.home / "bin" / "spark-submit"), "--master", master]
        args += ["--class", "org.apache.spark.sql.connect.service.SparkConnectServer"]
        args += ["--name", "Spark Connect server"]
        for key, value in confs.items():
            args += ["--conf", f"{key}={value}"]
        args.append("spark-internal")
        pid, log = self._spawn("connect", args)
        for worker_pid, worker_log in worker_logs:
            self._wait(
                "worker",
                worker_pid,
                worker_log,
                lambda log=worker_log: (
                    "Successfully registered with master" in log.read_text("latin-1")
                ),
            )
        self._wait(
            "Connect server",
            pid,
            log,
            lambda: _CONNECT_READY in log.read_text("latin-1") and _port_open(connect_port),
        )
        self.url = f"sc://{_HOST}:{connect_port}"
        return self.url

    def stop(self) -> None:
        """Stop the Connect server, the workers and the master, each by its process id."""
        for pid in reversed(self.pids):
            _stop_group(pid)
        self.pids = []
        if self._own_dir:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> SparkCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def provide_spark_url() -> Iterator[str]:
    """``$EVAL_PIPELINES_TEST_SPARK_URL`` when set, else a fresh cluster's URL (stopped after)."""
    if os.environ.get(SPARK_URL_ENV):
        yield os.environ[SPARK_URL_ENV]
        return
    with SparkCluster() as cluster:
        yield cluster.url


def load_duckdb_tables(
    duckdb_path: str | os.PathLike[str],
    spark_url: str,
    tables: Sequence[str],
    folder: str | os.PathLike[str],
) -> None:
    """Each DuckDB table as a parquet folder under ``folder`` (wiped first) and a Spark table
    of the same name over it (``CREATE TABLE ... USING parquet LOCATION``).

    Timestamps are written as naive microseconds (Spark reads them as ``timestamp_ntz``); the
    folder must be readable by the Spark processes (same machine)."""
    from pyspark.sql import SparkSession

    root = Path(folder)
    # Its own session, stopped at the end: a session left open keeps retrying to release itself
    # at exit once the cluster is gone, and becomes the default session of the process.
    spark = SparkSession.builder.remote(spark_url).create()
    try:
        _load(duckdb_path, spark, tables, root)
    finally:
        spark.stop()


def _load(
    duckdb_path: str | os.PathLike[str], spark: Any, tables: Sequence[str], root: Path
) -> None:
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        for table in tables:
            target = root / table
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            # Spark reads microsecond timestamps only: nanosecond ones are cast down.
            columns = [
                f'CAST("{row[0]}" AS TIMESTAMP) AS "{row[0]}"'
                if str(row[1]).upper().startswith("TIMESTAMP_NS")
                else f'"{row[0]}"'
                for row in con.execute(f'DESCRIBE "{table}"').fetchall()
            ]
            parquet = target / "part-0.parquet"
            select = f'SELECT {", ".join(columns)} FROM "{table}"'
            con.execute(f"COPY ({select}) TO '{parquet}' (FORMAT parquet)")
            spark.sql(f"DROP TABLE IF EXISTS `{table}`")
            spark.sql(f"CREATE TABLE `{table}` USING parquet LOCATION '{target}'")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--state", required=True, help="folder for the cluster's files and ids")
    args = parser.parse_args(argv)
    state = Path(args.state)
    record = state / "cluster.json"
    if args.action == "start":
        state.mkdir(parents=True, exist_ok=True)
        cluster = SparkCluster(base_dir=state / "cluster")
        url = cluster.start()
        record.write_text(json.dumps({"url": url, "pids": cluster.pids}))
        print(url)
        return 0
    if record.exists():
        for pid in reversed(json.loads(record.read_text())["pids"]):
            _stop_group(int(pid))
        record.unlink()
    shutil.rmtree(state / "cluster", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
