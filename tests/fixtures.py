"""Session-scoped fixtures for the data-pipeline tests: a small synthetic dataset and tiny Qwen-VL checkpoints.

Import them explicitly where used (``from tests.fixtures import synth_dir  # noqa: F401``); pytest picks up
fixtures that are names of the test module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lit_videor2.data.sampling import FrameSampling

#: Small frames (56×56, a multiple of the Qwen2/2.5-VL factor 28) at 1 fps, at most 8 frames: fast tests.
SMALL = FrameSampling(fps=1.0, min_frames=2, max_frames=8, min_pixels=56 * 56, max_pixels=56 * 56)
#: The same for Qwen3-VL (factor 32).
SMALL_QWEN3 = FrameSampling(fps=1.0, min_frames=2, max_frames=8, min_pixels=64 * 64, max_pixels=64 * 64)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """``generate_dataset(num_train=8, num_val=4)``: 64×64 clips of 6–10 s at 10 fps, Video-R2 JSON."""
    from lit_videor2.demo.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("synth")
    generate_dataset(out, num_train=8, num_val=4, seed=0)
    return out


@pytest.fixture(scope="session")
def synth_records(synth_dir) -> list[dict]:
    """The raw training records (with their ``scene``) of :func:`synth_dir`."""
    return json.loads((synth_dir / "train.json").read_text())


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """``arch -> folder`` of a tiny seeded checkpoint, built on first use and shared by the session."""
    from lit_videor2.demo.tiny import build_tiny_model

    built: dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in built:
            built[arch] = build_tiny_model(arch, tmp_path_factory.mktemp(arch), seed=0)
        return built[arch]

    return get


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_models) -> Path:
    """A tiny Qwen2.5-VL checkpoint folder."""
    return tiny_models("qwen2_5_vl")


@pytest.fixture(scope="session")
def processors(tiny_models):
    """``arch -> processor`` loaded from the tiny checkpoint (cached)."""
    from lit_videor2.models.hub import load_processor

    cache: dict = {}

    def get(arch: str):
        if arch not in cache:
            cache[arch] = load_processor(str(tiny_models(arch)))
        return cache[arch]

    return get


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path
