"""Shared fixtures: an isolated cache, the example plugin, and CLI/subprocess helpers."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    cache = os.environ.get("SIGPLEX_CACHE") or str(tmp_path_factory.getbasetemp() / "sigplex-cache")
    monkeypatch.setenv("SIGPLEX_CACHE", cache)


@pytest.fixture(autouse=True)
def _hand_written_kernels_on():
    """Every test starts with the hand-written CPU kernels on, whatever an in-process training chose."""
    from sigplex.core.device import set_kernel_choices

    set_kernel_choices({})
    yield
    set_kernel_choices({})
