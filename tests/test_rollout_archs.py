"""Group-shared rollouts on the other supported architectures: Qwen2-VL (no absolute time) and Qwen3-VL
(per-frame timestamp tokens, deepstack visual features injected into the first decoder layers)."""

from __future__ import annotations

import pytest
import torch

from lit_videor2.data.collate import VideoCollator
from lit_videor2.data.dataset import VideoSample
from lit_videor2.data.frames import Frames
from lit_videor2.data.records import VideoRecord
from lit_videor2.models.hub import load_processor
from lit_videor2.models.vision import original_rope_index, vision_special_token_ids
from lit_videor2.rollout import PromptBatch, generate_group, sequence_logprobs, stop_token_ids

SIZE = {"qwen2_vl": 56, "qwen3_vl": 64}  # multiples of patch x merge (28, 32)


def _batch(processor, side: int) -> PromptBatch:
    samples = []
    for seed, (n, fps) in enumerate([(8, 2.0), (4, 1.0)]):
        g = torch.Generator().manual_seed(seed)
        frames = torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=g)
        record = VideoRecord(
            id=f"r{seed}", video="v.mp4", question="What happens " + "first? " * (seed + 1), answer="A"
        )
        samples.append(VideoSample(record, Frames(frames, [i / fps for i in range(n)], n / fps, "test")))
    return PromptBatch.from_collated(VideoCollator(processor, "prompt")(samples))


def _grads(model, rollout, **kw):
    model.zero_grad(set_to_none=True)
    logps = sequence_logprobs(model, rollout, **kw)
    (logps * rollout.completion_mask).sum().backward()
    return logps.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen3_vl"])
def test_shared_rollout_logprobs_and_grads_equal_full_forward(arch, tiny_models):
    from transformers import AutoModelForImageTextToText

    folder = tiny_models(arch)
    processor = load_processor(str(folder))
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    model.model.visual.requires_grad_(False)
    batch = _batch(processor, SIZE[arch])
    eos = stop_token_ids(processor.tokenizer)
    rollout = generate_group(
        model,
        batch,
        group_size=3,
        max_new_tokens=8,
        eos_token_ids=eos,
        temperature=1.5,
        generator=torch.Generator().manual_seed(0),
    )
    assert rollout.video_features is not None
    if arch == "qwen3_vl":
        assert rollout.video_features.deepstack_features, "Qwen3-VL's deepstack features must be kept for reuse"
    base_logps, base_grads = _grads(model, rollout, share_prompt=False, reuse_vision=False)
    logps, grads = _grads(model, rollout, share_prompt=True, reuse_vision=True)
    torch.testing.assert_close(logps, base_logps, rtol=0, atol=1e-5)
    assert grads.keys() == base_grads.keys()
    for name, g in grads.items():
        scale = base_grads[name].abs().max().clamp(min=1e-12)
        assert ((g - base_grads[name]).abs().max() / scale).item() < 1e-4, name

    # Greedy shared generation equals the model's own generate, prompt by prompt (positions and timestamps right).
    greedy = generate_group(model, batch, group_size=1, max_new_tokens=6, eos_token_ids=eos, do_sample=False)
    for i in range(batch.batch_size):
        keep = batch.attention_mask[i].bool()
        pixels = torch.split(batch.pixel_values_videos, batch.video_grid_thw.prod(-1).tolist())[i]
        with original_rope_index(model):  # Qwen2-VL: the original rule; Qwen3-VL: unchanged
            ref = model.generate(
                input_ids=batch.input_ids[i : i + 1, keep],
                attention_mask=batch.attention_mask[i : i + 1, keep],
                mm_token_type_ids=batch.mm_token_type_ids[i : i + 1, keep],
                pixel_values_videos=pixels,
                video_grid_thw=batch.video_grid_thw[i : i + 1],
                max_new_tokens=6,
                do_sample=False,
                eos_token_id=eos,
                suppress_tokens=vision_special_token_ids(model.config, processor.tokenizer),
            )[0, int(keep.sum()) :]
        got = greedy.completion_ids[i, : int(greedy.completion_mask[i].sum())]
        assert got.tolist() == ref[: got.numel()].tolist()
