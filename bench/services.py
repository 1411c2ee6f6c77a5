"""Private, throwaway services for fleet tests and benchmarks: a PostgreSQL and an S3-compatible store.

`local_postgres()` runs the OS package's PostgreSQL (apt-get install postgresql) on a loopback port
in a temporary folder; `local_s3()` runs moto's server mode (an S3 API on loopback, no cloud
account) with one bucket. Both stop and leave nothing behind on exit. They are what CI and a
developer's laptop have; a real deployment points SPIRAL_DATABASE_URI and SPIRAL_ARTIFACTS_URL at
its own services.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..tools.errors import SpiralError
from .server import free_port


class ServiceUnavailable(SpiralError):
    """A local service could not be started (not installed, or it did not come up)."""


def postgres_binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; as root, run it as the packages' `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def local_postgres() -> Iterator[str]:
    """A fresh PostgreSQL cluster on a loopback port (trust auth, fsync off: tests only); yields its URI."""
    initdb, pg_ctl = postgres_binary("initdb"), postgres_binary("pg_ctl")
    if not (initdb and pg_ctl):
        raise ServiceUnavailable("PostgreSQL is not installed (apt-get install -y postgresql)")
    base = Path(tempfile.mkdtemp(prefix="spiral-pg-"))  # not under pytest's 0700 root-only tmp
    data = base / "data"
    port = free_port()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    subprocess.run(_as_postgres_user([initdb, "-D", str(data), "-U", "spiral", "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(_as_postgres_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w",
                                      "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql://spiral@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def s3_environment(endpoint: str) -> dict[str, str]:
    """What s3fs (through fsspec's configuration) and boto read to reach a local S3 with dummy credentials."""
    return {"FSSPEC_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


@contextmanager
def local_s3(bucket: str = "spiral", timeout_s: float = 60) -> Iterator[dict[str, str]]:
    """moto's S3 server on a loopback port with `bucket` created; yields the environment that points fsspec at
    it, SPIRAL_ARTIFACTS_URL included (s3://bucket/artifacts)."""
    import httpx

    moto = Path(sys.executable).with_name("moto_server")
    if not moto.exists():
        raise ServiceUnavailable("moto's server is not installed (pip install 'moto[server]')")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                httpx.put(f"{endpoint}/{bucket}", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ServiceUnavailable(f"moto_server did not start on {endpoint}") from None
                time.sleep(0.2)
        yield {**s3_environment(endpoint), "SPIRAL_ARTIFACTS_URL": f"s3://{bucket}/artifacts"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
