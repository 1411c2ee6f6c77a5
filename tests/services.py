"""Fixture helpers for tests that need PostgreSQL or an S3-compatible store (bench/services.py starts them):
skipped where they are missing, a failure where CI requires them (SPIRAL_REQUIRE_POSTGRES=1)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

import pytest

from spiral.bench.services import ServiceUnavailable, local_postgres, local_s3

T = TypeVar("T")


def _service_or_skip(start: Callable[[], AbstractContextManager[T]]) -> Iterator[T]:
    service = start()
    try:
        value = service.__enter__()
    except ServiceUnavailable as exc:
        if os.environ.get("SPIRAL_REQUIRE_POSTGRES") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield value
    finally:
        service.__exit__(None, None, None)


def postgres_or_skip() -> Iterator[str]:
    return _service_or_skip(local_postgres)


def s3_or_skip() -> Iterator[dict[str, str]]:
    return _service_or_skip(local_s3)
