"""The processor cache: batches built from it equal uncached batches exactly; any processor setting misses."""

from __future__ import annotations

import pytest
import torch

from lit_videor2.data.collate import VideoCollator
from lit_videor2.data.dataset import VideoDataset
from lit_videor2.data.frames import FrameLoader
from lit_videor2.data.processor_cache import ProcessorCache
from lit_videor2.data.schema import load_records
from lit_videor2.models.hub import load_processor
from tests.fixtures import SMALL, SMALL_QWEN3, processors, synth_dir, tiny_models  # noqa: F401

ARCHS = {"qwen2_5_vl": (SMALL, 28), "qwen3_vl": (SMALL_QWEN3, 32)}


def _samples(synth_dir, arch, cache_dir=None, n=3):  # noqa: F811
    sampling, factor = ARCHS[arch]
    records = load_records(synth_dir / "train.json").records[:n]
    ds = VideoDataset(records, synth_dir, FrameLoader(sampling, size_factor=factor, cache_dir=cache_dir))
    return [ds[i] for i in range(len(ds))]


def _assert_same_batch(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("mode", ["sft", "prompt"])
def test_batch_from_the_cache_equals_the_uncached_batch(arch, mode, processors, synth_dir, tmp_path):  # noqa: F811
    proc = processors(arch)
    plain = VideoCollator(proc, mode)(_samples(synth_dir, arch))  # no cache at all

    cached = VideoCollator(proc, mode, cache_dir=str(tmp_path))
    first = cached(_samples(synth_dir, arch, tmp_path))  # writes the frame and processor entries
    assert (cached.cache.misses, cached.cache.hits) == (3, 0)
    assert len(list((tmp_path / "processor").glob("*.pt"))) == 3

    def no_video_processing(*a, **k):
        raise AssertionError("the video processor ran despite a cache entry")

    real = proc.video_processor.__call__
    type(proc.video_processor).__call__ = no_video_processing
    try:
        second = cached(_samples(synth_dir, arch, tmp_path))  # frames and video outputs from the cache
    finally:
        type(proc.video_processor).__call__ = real
    assert cached.cache.hits == 3
    assert "_process_videos" not in vars(proc)  # the override is gone after each call
    _assert_same_batch(plain, first)
    _assert_same_batch(plain, second)


@pytest.mark.parametrize(
    "change",
    [
        lambda vp: setattr(vp, "size", {"shortest_edge": 100352, "longest_edge": vp.size["longest_edge"] + 1}),
        lambda vp: setattr(vp, "size", {"shortest_edge": 100353, "longest_edge": vp.size["longest_edge"]}),
        lambda vp: setattr(vp, "image_mean", [0.5, 0.5, 0.5]),
        lambda vp: setattr(vp, "temporal_patch_size", 1),
        lambda vp: setattr(vp, "merge_size", 1),
        lambda vp: setattr(vp, "fps", 3.0),
    ],
    ids=["max_pixels", "min_pixels", "mean", "temporal_patch", "merge", "fps"],
)
def test_a_processor_setting_change_misses(change, tiny_models, synth_dir, tmp_path):  # noqa: F811
    proc = load_processor(str(tiny_models("qwen2_5_vl")))  # own copy: it is changed
    key = ProcessorCache(tmp_path, proc).key("frames")
    assert ProcessorCache(tmp_path, proc).key("frames") == key  # deterministic
    assert ProcessorCache(tmp_path, proc).key("other frames") != key
    change(proc.video_processor)
    assert ProcessorCache(tmp_path, proc).key("frames") != key


def test_unreadable_entry_is_recomputed_and_uncached_frames_bypass(processors, synth_dir, tmp_path):  # noqa: F811
    proc = processors("qwen2_5_vl")
    collate = VideoCollator(proc, "prompt", cache_dir=str(tmp_path))
    samples = _samples(synth_dir, "qwen2_5_vl", tmp_path, n=1)
    good = collate(samples)
    (entry,) = (tmp_path / "processor").glob("*.pt")
    entry.write_bytes(b"torn")
    _assert_same_batch(good, collate(samples))
    assert collate.cache.misses == 2 and torch.load(entry, weights_only=True)["replacements"]  # rewritten
    _assert_same_batch(good, collate(_samples(synth_dir, "qwen2_5_vl", None, n=1)))  # no frame key: no cache use
    assert (collate.cache.misses, collate.cache.hits) == (2, 0)
