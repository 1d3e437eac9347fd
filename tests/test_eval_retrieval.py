"""`eval retrieval`: Recall@K exact on hand-made matrices; the command on the tiny LoFi run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from lofi_testing import (  # noqa: F401 - fixtures
    TinyRun,
    lofi_shards_fixture,
    lofi_tiny_run_fixture,
    one_thread_fixture,
)

from cxrdata.cli import main
from cxrdata.evaluate.retrieval import recall_at_k, retrieval_metrics


def test_recall_at_k_on_a_hand_made_matrix() -> None:
    sim = np.array([
        [0.9, 0.1, 0.3, 0.2],  # positive (col 0) ranked 1st
        [0.8, 0.1, 0.7, 0.6],  # positive (col 1) ranked 4th
        [0.5, 0.9, 0.4, 0.1],  # positive (col 2) ranked 3rd
    ])
    pos = np.eye(3, 4, dtype=bool)
    assert recall_at_k(sim, pos, (1, 2, 3, 4, 10)) == {1: 1 / 3, 2: 1 / 3, 3: 2 / 3, 4: 1.0, 10: 1.0}
    # several positives: the best-ranked one counts
    pos[1, 0] = True
    assert recall_at_k(sim, pos, (1,)) == {1: 2 / 3}
    # ties keep candidate order: col 0 ranks before col 1
    assert recall_at_k([[0.5, 0.5]], [[False, True]], (1, 2)) == {1: 0.0, 2: 1.0}
    with pytest.raises(ValueError, match="at least one positive"):
        recall_at_k([[0.1, 0.2]], [[False, False]])


def test_both_directions_with_study_groups() -> None:
    # 3 images (two of study A), 2 texts (A, B)
    sim = np.array([[0.9, 0.1], [0.2, 0.3], [0.4, 0.8]])
    result = retrieval_metrics(sim, ["A", "A", "B"], ["A", "B"], ks=(1, 2))
    assert result.image_to_text == {1: 2 / 3, 2: 1.0}
    assert result.text_to_image == {1: 1.0, 2: 1.0}  # text A: image 0 first; text B: image 2 first
    assert (result.n_images, result.n_texts) == (3, 2)


def test_eval_retrieval_on_the_tiny_run(lofi_tiny_run: TinyRun, tmp_path: Path) -> None:
    out = tmp_path / "retrieval.json"
    result = CliRunner().invoke(main, ["eval", "retrieval", "--run", str(lofi_tiny_run.run), "--data",
                                       str(lofi_tiny_run.data), "--split", "test", "--out", str(out),
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "over 4 candidate texts (5 image queries)" in result.output
    doc = json.loads(out.read_text())
    assert (doc["result"]["n_images"], doc["result"]["n_texts"]) == (5, 4)
    for direction in ("image_to_text", "text_to_image"):
        values = doc["result"][direction]
        assert set(values) == {"R@1", "R@5", "R@10"}
        assert all(0.0 <= v <= 1.0 for v in values.values())
        assert values["R@1"] <= values["R@5"] <= values["R@10"] == 1.0  # 10 > every candidate count here
    assert doc["split"] == "test" and doc["step"] == 4


def test_eval_retrieval_needs_a_trained_run(lofi_shards: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "retrieval", "--run", str(tmp_path), "--data", str(lofi_shards)])
    assert result.exit_code == 2 and "not a `train lofi` run folder" in result.output
