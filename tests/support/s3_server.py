"""A real S3-compatible HTTP server on loopback (moto's server mode), for tests.

Unlike ``moto.mock_aws`` (which patches botocore in-process), this serves real HTTP, so the
code under test goes through boto3's full stack: endpoint resolution, signing, retries,
timeouts, and MLflow's own boto3 client::

    with moto_s3_server() as endpoint:      # "http://127.0.0.1:<free port>"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="evals")

Fake credentials and a region are set in the environment for the duration (and the previous
values restored), and ``AWS_ENDPOINT_URL*`` / profile variables are cleared so a developer's
real configuration can never be used by a test.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never read ~/.aws of whoever runs the tests.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
CLEARED = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "MLFLOW_S3_ENDPOINT_URL",
)


@contextmanager
def fake_aws_environment() -> Iterator[None]:
    """Set fake credentials and clear real AWS configuration; restore everything on exit."""
    saved = {name: os.environ.get(name) for name in (*FAKE_ENV, *CLEARED)}
    try:
        for name in CLEARED:
            os.environ.pop(name, None)
        os.environ.update(FAKE_ENV)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """Start moto's threaded HTTP server on a free loopback port; yield its endpoint URL.

    Port 0 lets the OS pick a free port (no race between finding and binding it);
    ``get_host_and_port()`` reports the one chosen. moto keeps its backends in process-global
    state, so tests sharing a process should use distinct bucket names.
    """
    from moto.server import ThreadedMotoServer

    # The server logs every request through werkzeug; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with fake_aws_environment():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()
