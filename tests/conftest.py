"""Shared fixtures: synthetic datasets written by cxrdata's own sample-data code, once per session."""

from __future__ import annotations

import os
import tempfile

# A fresh `datasets` cache per test session: its cache must never serve a previous run's shards.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="cxrdata-hf-cache-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from cxrdata_testing import build_with

from cxrdata.pipeline.build import BuildResult
from cxrdata.sample.mimic import MimicSample, write_mimic_sample


@pytest.fixture(scope="session")
def mimic_sample(tmp_path_factory: pytest.TempPathFactory) -> MimicSample:
    """The default MIMIC-CXR-JPG + reports + MS-CXR sample (with its deliberate defects)."""
    return write_mimic_sample(tmp_path_factory.mktemp("mimic") / "mimic-cxr-jpg", subjects=12, seed=0)


@pytest.fixture(scope="session")
def mimic_build(mimic_sample: MimicSample, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The sample built with default options (frontal views, 512 px JPEG), two workers."""
    out = tmp_path_factory.mktemp("mimic-build") / "out"
    return build_with("mimic", out, workers=2, root=mimic_sample.root)
