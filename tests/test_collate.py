"""Collation: label masks and padding, frame times reaching the processor, token counts, length limits, skips."""

from __future__ import annotations

import re

import pytest
import torch

from lit_videor2.data.collate import VideoCollator
from lit_videor2.data.dataset import SkippedSample, VideoDataset
from lit_videor2.data.frames import FrameLoader
from lit_videor2.data.schema import RecordError, load_records
from tests.fixtures import SMALL, SMALL_QWEN3, processors, synth_dir, tiny_models  # noqa: F401

END = "<|im_end|>\n"


def _samples(synth_dir, sampling=SMALL, n=3, factor=28):  # noqa: F811
    records = load_records(synth_dir / "train.json").records[:n]
    ds = VideoDataset(records, synth_dir, FrameLoader(sampling, size_factor=factor))
    return [ds[i] for i in range(len(ds))]


@pytest.fixture(scope="module")
def samples(synth_dir):  # noqa: F811
    return _samples(synth_dir)


@pytest.fixture(scope="module")
def proc(processors):  # noqa: F811
    return processors("qwen2_5_vl")


def test_sft_labels_only_on_assistant_target_with_right_padding(proc, samples):
    tok = proc.tokenizer
    batch = VideoCollator(proc, "sft")(samples)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    assert batch["batch_size"] == 3 and batch["num_skipped"] == 0 and batch["num_truncated"] == 0
    assert ids.shape == mask.shape == labels.shape == batch["mm_token_type_ids"].shape
    lengths = mask.sum(1)
    assert len(set(lengths.tolist())) > 1  # the samples differ in length, so padding is exercised
    for i, s in enumerate(samples):
        n, p = int(lengths[i]), int(batch["prompt_lengths"][i])
        assert mask[i, :n].all() and not mask[i, n:].any()  # right padding
        assert (ids[i, n:] == tok.pad_token_id).all() and (labels[i, n:] == -100).all()
        assert (labels[i, :p] == -100).all()  # system, user turn, video and generation prompt: no loss
        assert torch.equal(labels[i, p:n], ids[i, p:n])  # every assistant token has its label
        assert tok.decode(ids[i, p:n]) == s.record.solution + END  # target incl. <|im_end|>\n, nothing else
        assert tok.decode(ids[i, :p]).endswith("<|im_start|>assistant\n")
        assert (batch["mm_token_type_ids"][i, p:] == 0).all()


def test_prompt_left_padded_and_equal_to_the_sft_prefix(proc, samples):
    batch = VideoCollator(proc, "sft")(samples)
    pids, pmask = batch["prompt_input_ids"], batch["prompt_attention_mask"]
    width = pids.shape[1]
    for i in range(len(samples)):
        p = int(batch["prompt_lengths"][i])
        assert not pmask[i, : width - p].any() and pmask[i, width - p :].all()  # left padding
        assert (pids[i, : width - p] == proc.tokenizer.pad_token_id).all()
        assert torch.equal(pids[i, width - p :], batch["input_ids"][i, :p])
        assert torch.equal(batch["prompt_mm_token_type_ids"][i, width - p :], batch["mm_token_type_ids"][i, :p])


def test_video_tokens_and_frame_times_reach_the_processor(proc, samples):
    batch = VideoCollator(proc, "prompt")(samples)
    assert "labels" not in batch and "input_ids" not in batch
    video_id = proc.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    grid = batch["video_grid_thw"]  # [B, 3] (t, h, w) in patches
    assert batch["pixel_values_videos"].shape[0] == int(grid.prod(-1).sum())
    for i, s in enumerate(samples):
        n = len(s.frames.times)
        assert grid[i].tolist() == [n // 2, 56 // 14, 56 // 14]  # frames kept at the FrameLoader's 56x56
        assert int((batch["prompt_input_ids"][i] == video_id).sum()) == int(grid[i].prod()) // 4
        # Qwen2.5-VL: seconds per temporal patch from the real spacing of the sampled frames
        assert float(batch["second_per_grid_ts"][i]) == pytest.approx(2 * s.frames.duration / n, rel=1e-3)
    cols = batch["columns"]
    assert cols["id"] == [s.record.id for s in samples]
    assert cols["frame_times"] == [s.frames.times for s in samples]
    assert cols["duration"] == pytest.approx([s.frames.duration for s in samples])
    for key in ("answer", "problem_type", "options", "temporal_grounding", "question", "solution", "video"):
        assert cols[key] == [s.record.columns()[key] for s in samples], key


def test_spacing_not_nominal_fps_sets_second_per_grid_ts(proc, synth_dir):  # noqa: F811
    # 1 fps asked, but a 7 s clip at 10 fps gives 6 frames (temporal patch): 7/6 s apart, not 1 s.
    samples = _samples(synth_dir, n=8)
    seven = [s for s in samples if s.frames.duration == pytest.approx(7.0)]
    assert seven, "the fixture dataset should hold a 7 s clip"
    batch = VideoCollator(proc, "prompt")(seven[:1])
    assert len(seven[0].frames.times) == 6
    assert float(batch["second_per_grid_ts"][0]) == pytest.approx(2 * 7 / 6)


def test_prompt_over_limit_raises_and_is_never_truncated(proc, samples):
    lengths = VideoCollator(proc, "sft")(samples)["prompt_lengths"]
    limit = int(lengths.min())  # the shortest prompt fits exactly, the others do not
    with pytest.raises(RecordError, match=r"record 'synth-train-\d+' \(.*train.json\[\d\]\): prompt has \d+ tokens"):
        VideoCollator(proc, "sft", max_prompt_length=limit)(samples)
    batch = VideoCollator(proc, "sft", max_prompt_length=limit, on_error="skip")(samples)
    kept = int((lengths == limit).sum())
    assert batch["batch_size"] == kept and batch["num_skipped"] == len(samples) - kept
    assert batch["prompt_lengths"].tolist() == [limit] * kept  # whole prompt kept


def test_sft_target_truncation_counted(proc, samples):
    full = VideoCollator(proc, "sft")(samples)
    p0 = int(full["prompt_lengths"][0])
    batch = VideoCollator(proc, "sft", max_length=p0 + 5)(samples[:1])
    assert batch["num_truncated"] == 1
    assert int((batch["labels"][0] != -100).sum()) == 5
    assert batch["input_ids"].shape[1] == p0 + 5
    assert torch.equal(batch["input_ids"][0, :p0], full["input_ids"][0, :p0])  # the prompt is untouched


def test_sft_needs_a_target(proc, samples):
    s = samples[0]
    s2 = type(s)(type(s.record)(**{**s.record.__dict__, "solution": None}), s.frames)
    with pytest.raises(RecordError, match="SFT needs a reasoning target"):
        VideoCollator(proc, "sft")([s2])
    assert VideoCollator(proc, "prompt")([s2])["batch_size"] == 1


def test_skipped_samples_counted_and_empty_batch(proc, samples):
    skipped = SkippedSample("x", "video file not found")
    batch = VideoCollator(proc, "sft")([samples[0], skipped])
    assert batch["num_skipped"] == 1 and batch["batch_size"] == 1 and batch["input_ids"].shape[0] == 1
    assert VideoCollator(proc, "sft")([skipped]) == {
        "num_skipped": 1,
        "skipped": [{"id": "x", "benchmark": None, "reason": "video file not found"}],
        "batch_size": 0,
    }


def test_qwen2_vl_has_no_second_per_grid_ts(processors, synth_dir):  # noqa: F811
    batch = VideoCollator(processors("qwen2_vl"), "sft")(_samples(synth_dir, n=2))
    assert "second_per_grid_ts" not in batch and batch["video_grid_thw"][:, 1:].tolist() == [[4, 4], [4, 4]]


def test_qwen3_vl_frame_pair_timestamps_and_size(processors, synth_dir):  # noqa: F811
    proc = processors("qwen3_vl")
    samples = _samples(synth_dir, SMALL_QWEN3, n=2, factor=32)
    batch = VideoCollator(proc, "prompt")(samples)
    tok = proc.tokenizer
    for i, s in enumerate(samples):
        n, times = len(s.frames.times), s.frames.times
        # frames kept at 64x64 -> 4x4 patches of 16 -> 2x2 = 4 merged tokens per frame pair
        assert batch["video_grid_thw"][i].tolist() == [n // 2, 4, 4]
        text = tok.decode(batch["prompt_input_ids"][i][batch["prompt_attention_mask"][i].bool()])
        stamps = [float(x) for x in re.findall(r"<(\d+\.\d) seconds>", text)]
        expected = [round((times[2 * k] + times[2 * k + 1]) / 2, 1) for k in range(n // 2)]
        assert stamps == pytest.approx(expected, abs=0.051)
        blocks = re.findall(r"seconds><\|vision_start\|>((?:<\|video_pad\|>)+)<\|vision_end\|>", text)
        assert [b.count("<|video_pad|>") for b in blocks] == [4] * (n // 2)


def test_sft_prompt_filling_max_length_raises_or_is_skipped(proc, samples):
    """A prompt with no room left for the target is a bad record: named, or skipped and counted with 'skip'."""
    lengths = VideoCollator(proc, "sft")(samples)["prompt_lengths"]
    limit = int(lengths.min())  # the shortest prompt fills max_length exactly
    with pytest.raises(RecordError, match=r"prompt has \d+ tokens, filling max_length"):
        VideoCollator(proc, "sft", max_length=limit)(samples)
    batch = VideoCollator(proc, "sft", max_length=limit, on_error="skip")(samples)
    assert batch["num_skipped"] == len(samples) and batch["batch_size"] == 0
