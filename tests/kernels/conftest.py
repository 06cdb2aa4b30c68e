"""Fixtures of the launch-path tests."""

import pytest

from inception_core import launch, tuned_tables


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A launch path with no memory of earlier launches, no autotuning, no device-name override, and the
    tuned tables read from ``tmp_path / "tables"`` (empty until a test writes there); yields tmp_path."""
    monkeypatch.delenv(launch.AUTOTUNE_ENV, raising=False)
    monkeypatch.delenv(tuned_tables.DEVICE_NAME_ENV, raising=False)
    monkeypatch.setenv(tuned_tables.TUNED_DIR_ENV, str(tmp_path / "tables"))
    tuned_tables.clear_cache()
    launch.reset_launch_stats(forget=True)
    yield tmp_path
    tuned_tables.clear_cache()
    launch.reset_launch_stats(forget=True)
