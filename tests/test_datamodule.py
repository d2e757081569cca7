"""VideoDataModule end to end: resumable sampler, bad inputs through the loaders, tiny-model forward/backward."""

from __future__ import annotations

import json
import re

import pytest
import torch

from lit_videor2.data.datamodule import VideoDataModule
from lit_videor2.data.decoding import VideoDecodeError
from lit_videor2.data.sampler import ResumableSampler
from lit_videor2.data.sampling import FrameSampling
from tests.fixtures import SMALL, SMALL_QWEN3, processors, synth_dir, tiny_model_dir, tiny_models  # noqa: F401

# ------------------------------------------------------------------------------------------------ sampler


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("done", [0, 1, 6, 13])
def test_resume_skips_exactly_the_consumed_samples(shuffle, done):
    data = list(range(13))
    full = ResumableSampler(data, shuffle=shuffle, seed=7)
    full.set_epoch(2)
    order = list(full)
    assert sorted(order) == data and (order != data) == shuffle
    resumed = ResumableSampler(data, shuffle=shuffle, seed=7)
    resumed.resume(epoch=2, start=done)
    resumed.set_epoch(2)
    assert list(resumed) == order[done:]  # (len() semantics while resuming belong to the sampler's owner)
    assert list(resumed) == order  # only the first pass over the resumed epoch is shortened
    resumed.set_epoch(3)
    assert (list(resumed) != order) == shuffle and sorted(resumed) == data  # a new epoch reshuffles


def test_resume_for_another_epoch_does_not_skip():
    s = ResumableSampler(list(range(10)), seed=1)
    s.resume(epoch=1, start=4)
    assert len(list(s)) == 10  # epoch 0 is untouched
    s.set_epoch(1)
    assert len(list(s)) == 6


def test_rank_slicing_partitions_each_epoch():
    data = list(range(10))
    ranks = [ResumableSampler(data, num_replicas=3, rank=r, seed=0) for r in range(3)]
    parts = [list(s) for s in ranks]
    assert [len(p) for p in parts] == [4, 4, 4]  # padded to equal length, as DistributedSampler
    assert set().union(*parts) == set(data)
    single = list(ResumableSampler(data, seed=0))
    assert [single[i] for i in range(0, 10, 3)] == parts[0][: len(range(0, 10, 3))]  # same permutation, strided
    ranks[1].resume(0, 2 * 3)  # every rank took 2: the first 6 positions of the epoch's order are consumed
    assert list(ranks[1]) == parts[1][2:]


# ------------------------------------------------------------------------------------------------ datamodule


def _dm(synth_dir, model_dir, **kw):  # noqa: F811
    args = dict(
        processor=str(model_dir),
        train_file=str(synth_dir / "train.json"),
        val_file=str(synth_dir / "val.json"),
        batch_size=2,
        num_workers=0,
        sampling=SMALL,
        seed=3,
    )
    args.update(kw)
    return VideoDataModule(**args)


def test_datamodule_resume_continues_the_epoch(synth_dir, tiny_model_dir):  # noqa: F811
    dm = _dm(synth_dir, tiny_model_dir)
    dm.setup("fit")
    ids = [i for b in dm.train_dataloader() for i in b["columns"]["id"]]
    assert sorted(ids) == sorted(r.id for r in dm.datasets["train"].records) and len(ids) == 8
    dm2 = _dm(synth_dir, tiny_model_dir)
    dm2.load_state_dict({"epoch": 0, "batches": 2})
    resumed = [i for b in dm2.train_dataloader() for i in b["columns"]["id"]]
    assert resumed == ids[4:]


def test_val_and_test_loaders_modes(synth_dir, tiny_model_dir):  # noqa: F811
    dm = _dm(synth_dir, tiny_model_dir, test_file=str(synth_dir / "val.json"), eval_batch_size=4)
    val = next(iter(dm.val_dataloader()))
    test = next(iter(dm.test_dataloader()))
    assert "labels" in val and val["batch_size"] == 4  # SFT validation loss
    assert "labels" not in test and test["prompt_input_ids"].shape[0] == 4
    assert [r.id for r in dm.datasets["val"].records] == val["columns"]["id"]  # eval order is not shuffled


def test_missing_processor_is_a_clear_error(synth_dir):  # noqa: F811
    dm = VideoDataModule(train_file=str(synth_dir / "train.json"))
    with pytest.raises(ValueError, match="set `data.processor`"):
        dm.frame_loader  # noqa: B018


def _bad_dataset(synth_dir, tmp_path):  # noqa: F811
    """Four good records plus a missing, an empty and a corrupt video, and one malformed line."""
    good = json.loads((synth_dir / "train.json").read_text())[:4]
    for r in good:
        r["video"] = str(synth_dir / r["video"])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "corrupt.mp4").write_bytes(torch.randint(0, 256, (3000,), dtype=torch.uint8).numpy().tobytes())
    bad = [dict(good[0], id=f"bad-{n}", video=n) for n in ("missing.mp4", "empty.mp4", "corrupt.mp4")]
    lines = [json.dumps(r) for r in [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3]]]
    lines.insert(3, '{"id": "torn", ')
    ann = tmp_path / "ann.jsonl"
    ann.write_text("\n".join(lines) + "\n")
    return ann


def test_bad_inputs_raise_naming_file_and_record(synth_dir, tiny_model_dir, tmp_path):  # noqa: F811
    ann = _bad_dataset(synth_dir, tmp_path)
    dm = _dm(synth_dir, tiny_model_dir, train_file=str(ann), val_file=None, video_root=str(tmp_path))
    with pytest.raises(Exception, match=rf"{ann}:4: malformed JSON line"):
        dm.setup("fit")
    ann.write_text("\n".join(line for line in ann.read_text().splitlines() if "torn" not in line))
    dm = _dm(synth_dir, tiny_model_dir, train_file=str(ann), val_file=None, video_root=str(tmp_path), shuffle=False)
    ds = dm.build_dataset("train")
    for idx, what in ((1, "missing.mp4: video file not found"), (3, "empty.mp4: video file is empty"),
                      (5, "corrupt.mp4: could not decode video")):  # fmt: skip
        with pytest.raises(VideoDecodeError, match=rf"record 'bad-[\w.]+' \({re.escape(str(ann))}:\d\): .*{what}"):
            ds[idx]


def test_bad_inputs_skipped_and_counted(synth_dir, tiny_model_dir, tmp_path):  # noqa: F811
    ann = _bad_dataset(synth_dir, tmp_path)
    dm = _dm(
        synth_dir, tiny_model_dir, train_file=str(ann), val_file=None, video_root=str(tmp_path), on_error="skip",
        shuffle=False, batch_size=7,
    )  # fmt: skip
    dm.setup("fit")
    assert dm.skipped_records["train"] == 1  # the malformed line
    (batch,) = list(dm.train_dataloader())
    assert batch["num_skipped"] == 3 and batch["batch_size"] == 4
    assert batch["input_ids"].shape[0] == 4 and len(batch["columns"]["id"]) == 4
    assert not any(i.startswith("bad-") for i in batch["columns"]["id"])


# ------------------------------------------------------------------------------------------------ integration


def _model(model_dir):  # noqa: F811
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    return AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=torch.float32).train()


def _model_inputs(batch: dict) -> dict:
    keys = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values_videos", "video_grid_thw",
            "second_per_grid_ts")  # fmt: skip
    return {k: batch[k] for k in keys if k in batch}


def _batches_equal(a: dict, b: dict) -> bool:
    for k in a:
        if isinstance(a[k], torch.Tensor):
            if not torch.equal(a[k], b[k]):
                return False
        elif a[k] != b[k]:
            return False
    return a.keys() == b.keys()


@pytest.mark.slow
def test_forward_backward_qwen2_5_vl_from_datamodule(synth_dir, tiny_model_dir):  # noqa: F811
    dm = _dm(synth_dir, tiny_model_dir)
    batch = next(iter(dm.train_dataloader()))
    model = _model(tiny_model_dir)
    out = model(**_model_inputs(batch), labels=batch["labels"])
    # the HF loss is the mean next-token cross-entropy over the assistant tokens only
    logits, labels = out.logits[:, :-1].float(), batch["labels"][:, 1:]
    manual = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
    assert torch.isfinite(out.loss) and out.loss.item() == pytest.approx(manual.item(), rel=1e-5)
    out.loss.backward()
    vis = [p.grad for p in model.model.visual.parameters() if p.grad is not None]
    assert vis and any(g.abs().sum() > 0 for g in vis)  # the video features feed the loss
    # right padding is transparent: the first sample alone gives the same logits on its tokens
    with torch.no_grad():
        n = int(batch["attention_mask"][0].sum())
        t0 = int(batch["video_grid_thw"][0].prod())
        single = {
            "input_ids": batch["input_ids"][:1, :n],
            "attention_mask": batch["attention_mask"][:1, :n],
            "mm_token_type_ids": batch["mm_token_type_ids"][:1, :n],
            "pixel_values_videos": batch["pixel_values_videos"][:t0],
            "video_grid_thw": batch["video_grid_thw"][:1],
            "second_per_grid_ts": batch["second_per_grid_ts"][:1],
        }
        model.eval()
        alone = model(**single).logits[0]
        together = model(**_model_inputs(batch)).logits[0, :n]
    assert torch.allclose(alone, together, atol=1e-4)


@pytest.mark.slow
def test_worker_decoding_gives_the_same_batches(synth_dir, tiny_model_dir):  # noqa: F811
    in_process = list(_dm(synth_dir, tiny_model_dir, num_workers=0).train_dataloader())
    loader = _dm(synth_dir, tiny_model_dir, num_workers=1).train_dataloader()
    assert loader.num_workers == 1
    in_worker = list(loader)
    assert len(in_worker) == len(in_process) == 4
    assert all(_batches_equal(a, b) for a, b in zip(in_process, in_worker))
    model = _model(tiny_model_dir)
    out = model(**_model_inputs(in_worker[0]), labels=in_worker[0]["labels"])
    out.loss.backward()
    assert torch.isfinite(out.loss)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen3_vl"])
def test_forward_other_archs(arch, synth_dir, tiny_models):  # noqa: F811
    path = tiny_models(arch)
    dm = _dm(synth_dir, path, sampling=SMALL_QWEN3 if arch == "qwen3_vl" else SMALL)
    batch = next(iter(dm.train_dataloader()))
    assert ("second_per_grid_ts" in batch) is False
    model = _model(path)
    with torch.no_grad():
        out = model(**_model_inputs(batch), labels=batch["labels"])
    assert torch.isfinite(out.loss)
    assert out.logits.shape[:2] == batch["input_ids"].shape


def test_a_validation_set_without_a_file_reads_val_file(synth_dir, tiny_model_dir):  # noqa: F811
    """``val_benchmarks`` entries without ``file`` follow ``val_file`` (so ``--data.val_file`` swaps them too); a test
    benchmark without a file is an error naming it."""
    from lit_videor2.data.benchmark import Benchmark
    from lit_videor2.data.schema import RecordError

    other = FrameSampling(fps=2.0, min_frames=2, max_frames=8, min_pixels=56 * 56, max_pixels=56 * 56)
    dm = _dm(synth_dir, tiny_model_dir, val_benchmarks=[Benchmark(name="2fps", sampling=other)])
    dm.setup("validate")
    n = len(json.loads((synth_dir / "val.json").read_text()))
    assert len(dm.datasets["val"]) == 2 * n
    with pytest.raises(RecordError, match=r"benchmark 'nofile': no annotation file"):
        _dm(synth_dir, tiny_model_dir, benchmarks=[Benchmark(name="nofile")]).setup("test")
