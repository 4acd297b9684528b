"""Fixtures of the registration tests: a small structured CT, and a working directory of its own per test."""

from __future__ import annotations

import pytest

from tests._phantoms import blob_subject


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    # Results go to <trainer.log_dir>/poses.json, the working directory for a Trainer without a logger.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="package")
def subject():
    return blob_subject()
