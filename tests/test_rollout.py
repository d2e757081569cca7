"""Group-shared rollouts (lit_videor2.rollout) against the plain per-completion paths.

Every shared path is compared with the baseline other frameworks use (each prompt row repeated G times with its
own video, ``model.generate`` and full forwards) on a tiny Qwen2.5-VL, with prompts made by the project's
:class:`VideoCollator` from random frames: two videos of different length and fps, left-padded.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lit_videor2.data.collate import VideoCollator
from lit_videor2.data.dataset import VideoSample
from lit_videor2.data.frames import Frames
from lit_videor2.data.records import VideoRecord
from lit_videor2.models.vision import continue_positions, original_rope_index, vision_special_token_ids
from lit_videor2.rollout import (
    PromptBatch,
    Rollout,
    completion_mask_from_eos,
    generate_group,
    sequence_logprobs,
    stop_token_ids,
)

G = 3


# ----------------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from lit_videor2.demo.tiny import build_tiny_model

    return build_tiny_model("qwen2_5_vl", tmp_path_factory.mktemp("tiny_rollout"), seed=0)


@pytest.fixture(scope="module")
def processor(model_dir):
    from lit_videor2.models.hub import load_processor

    return load_processor(str(model_dir))


@pytest.fixture()
def model(model_dir):
    """A fresh model per test (tests add hooks and freeze parts)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    return Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir).eval()


@pytest.fixture(scope="module")
def eos(processor):
    ids = stop_token_ids(processor.tokenizer)
    assert processor.tokenizer.convert_tokens_to_ids("<|im_end|>") in ids
    return ids


def _sample(seed: int, num_frames: int, fps: float, question: str) -> VideoSample:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (num_frames, 3, 56, 56), dtype=torch.uint8, generator=g)
    record = VideoRecord(id=f"r{seed}", video=f"v{seed}.mp4", question=question, answer="A")
    return VideoSample(record, Frames(frames, [i / fps for i in range(num_frames)], num_frames / fps, "test"))


@pytest.fixture(scope="module")
def batch(processor) -> PromptBatch:
    """Two prompts: 8 frames at 2 fps and 4 frames at 1 fps (different ``second_per_grid_ts``), left-padded."""
    samples = [
        _sample(0, 8, 2.0, "What colour is the shape?"),
        _sample(1, 4, 1.0, "Which shape appears first, and at what time does the red circle leave the frame?"),
    ]
    b = PromptBatch.from_collated(VideoCollator(processor, "prompt")(samples))
    assert (b.attention_mask == 0).any(), "the two prompts must differ in length so that one is left-padded"
    assert b.second_per_grid_ts[0] != b.second_per_grid_ts[1]
    return b


def _single(b: PromptBatch, i: int) -> PromptBatch:
    """Prompt ``i`` of ``b`` alone, without padding."""
    keep = b.attention_mask[i].bool()
    pixels = torch.split(b.pixel_values_videos, b.video_grid_thw.prod(-1).tolist())[i]
    return PromptBatch(
        input_ids=b.input_ids[i : i + 1, keep],
        attention_mask=b.attention_mask[i : i + 1, keep],
        mm_token_type_ids=b.mm_token_type_ids[i : i + 1, keep],
        pixel_values_videos=pixels,
        video_grid_thw=b.video_grid_thw[i : i + 1],
        second_per_grid_ts=b.second_per_grid_ts[i : i + 1],
    )


def _with_completions(rollout: Rollout, completion_ids: torch.Tensor, eos: list[int]) -> Rollout:
    """``rollout`` (same prompts) holding other completions ``[N, T']``; masks and positions rebuilt."""
    mask, truncated = completion_mask_from_eos(completion_ids, eos)
    prompt_pos = rollout.position_ids[..., : rollout.prompt_length]  # (3, N, Lp)
    positions = torch.cat([prompt_pos, continue_positions(prompt_pos[..., -1:], completion_ids.shape[1])], dim=-1)
    return dataclasses.replace(
        rollout, completion_ids=completion_ids, completion_mask=mask, is_truncated=truncated, position_ids=positions
    )


def _sampled(model, batch, eos, *, share_prefix=True, **kw) -> Rollout:
    kw = {"group_size": G, "max_new_tokens": 10, "temperature": 1.5, **kw}
    return generate_group(
        model, batch, eos_token_ids=eos, share_prefix=share_prefix, generator=torch.Generator().manual_seed(0), **kw
    )


class VisionCalls:
    """Counts the videos the vision tower encodes (rows of ``grid_thw`` of each call)."""

    def __init__(self, model):
        self.calls = 0
        self.videos = 0
        model.model.visual.register_forward_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs, output):
        self.calls += 1
        self.videos += int(kwargs["grid_thw"].shape[0])


# ----------------------------------------------------------------------------------------------------------------
# (1) greedy continuation after the shared prefill equals plain generate
# ----------------------------------------------------------------------------------------------------------------


def test_greedy_shared_prefill_equals_generate_per_prompt(model, batch, eos):
    shared = generate_group(model, batch, group_size=1, max_new_tokens=12, eos_token_ids=eos, do_sample=False)
    plain = generate_group(
        model, batch, group_size=1, max_new_tokens=12, eos_token_ids=eos, do_sample=False, share_prefix=False
    )
    assert shared.completion_ids.shape == (2, 12)
    torch.testing.assert_close(shared.completion_ids, plain.completion_ids, rtol=0, atol=0)
    for i in range(2):
        alone = _single(batch, i)
        with original_rope_index(model):  # the model's own generate, its positions by the original Qwen rule
            out = model.generate(
                input_ids=alone.input_ids,
                attention_mask=alone.attention_mask,
                mm_token_type_ids=alone.mm_token_type_ids,
                pixel_values_videos=alone.pixel_values_videos,
                video_grid_thw=alone.video_grid_thw,
                second_per_grid_ts=alone.second_per_grid_ts,
                max_new_tokens=12,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=eos[0],
                suppress_tokens=vision_special_token_ids(model.config),
            )
        torch.testing.assert_close(shared.completion_ids[i], out[0, alone.length :], rtol=0, atol=0)


def test_greedy_group_rows_are_identical(model, batch, eos):
    r = generate_group(model, batch, group_size=G, max_new_tokens=8, eos_token_ids=eos, do_sample=False)
    assert r.completion_ids.shape[0] == 2 * G
    for i in range(2):
        rows = r.completion_ids[i * G : (i + 1) * G]
        assert (rows == rows[0]).all()


# ----------------------------------------------------------------------------------------------------------------
# (2) shared-prompt / reused-vision log-probs and gradients equal the plain full forward
# ----------------------------------------------------------------------------------------------------------------


def _grads(model, rollout, **kw) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    logps = sequence_logprobs(model, rollout, **kw)
    (logps * rollout.completion_mask).sum().backward()
    return logps.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    ("share_prompt", "reuse_vision"), [(True, True), (False, True), (True, False)], ids=["shared", "reuse", "prompt"]
)
def test_shared_logprobs_and_grads_equal_full_forward(model, batch, eos, share_prompt, reuse_vision):
    model.model.visual.requires_grad_(False)  # the Video-R2 recipe: vision frozen, full LLM trained
    rollout = _sampled(model, batch, eos)
    base_logps, base_grads = _grads(model, rollout, share_prompt=False, reuse_vision=False)
    logps, grads = _grads(model, rollout, share_prompt=share_prompt, reuse_vision=reuse_vision)

    torch.testing.assert_close(logps, base_logps, rtol=0, atol=1e-5)
    llm = {n for n, p in model.named_parameters() if p.requires_grad}
    assert grads.keys() == base_grads.keys() == llm  # every LLM parameter gets a gradient, incl. the embeddings
    for name, g in grads.items():
        scale = base_grads[name].abs().max().clamp(min=1e-12)
        assert ((g - base_grads[name]).abs().max() / scale).item() < 1e-5, name


def test_logprobs_match_sampling_temperature(model, batch, eos):
    rollout = _sampled(model, batch, eos)
    with torch.no_grad():
        t1 = sequence_logprobs(model, rollout, temperature=1.0)
        t2 = sequence_logprobs(model, rollout, temperature=2.0)
    assert (t1 <= 0).all() and (t2 <= 0).all()
    assert not torch.allclose(t1, t2)


def test_reuse_vision_refuses_trainable_vision_tower(model, batch, eos):
    rollout = _sampled(model, batch, eos)
    with pytest.raises(ValueError, match="trainable vision tower"):
        sequence_logprobs(model, rollout, reuse_vision=True)
    with torch.no_grad():  # reference / old-policy passes are fine
        sequence_logprobs(model, rollout, reuse_vision=True)


def test_shared_prompt_refuses_gradient_checkpointing(model, batch, eos):
    rollout = _sampled(model, batch, eos)
    model.model.visual.requires_grad_(False)
    model.activation_checkpointing_enable()
    model.train()
    with pytest.raises(ValueError, match="gradient checkpointing"):
        sequence_logprobs(model, rollout)
    sequence_logprobs(model, rollout, share_prompt=False).sum().backward()  # the plain path works with it


def test_reuse_vision_needs_shared_rollout(model, batch, eos):
    rollout = _sampled(model, batch, eos, share_prefix=False)
    assert rollout.video_features is None
    with torch.no_grad(), pytest.raises(ValueError, match="share_prefix=False"):
        sequence_logprobs(model, rollout, reuse_vision=True)


# ----------------------------------------------------------------------------------------------------------------
# (3) a left-padded batch of two prompts gives what each prompt gives alone
# ----------------------------------------------------------------------------------------------------------------


def test_batch_equals_each_prompt_alone(model, batch, eos):
    together = generate_group(model, batch, group_size=G, max_new_tokens=10, eos_token_ids=eos, do_sample=False)
    sampled = _sampled(model, batch, eos)
    with torch.no_grad():
        batch_logps = sequence_logprobs(model, sampled)
    for i in range(2):
        alone = generate_group(
            model, _single(batch, i), group_size=G, max_new_tokens=10, eos_token_ids=eos, do_sample=False
        )
        rows = slice(i * G, (i + 1) * G)
        t = alone.completion_length
        torch.testing.assert_close(together.completion_ids[rows, :t], alone.completion_ids, rtol=0, atol=0)
        # positions: the real (unpadded) part of the batch row equals the prompt alone
        keep = torch.cat([batch.attention_mask[i].bool(), torch.ones(t, dtype=torch.bool)])
        torch.testing.assert_close(together.position_ids[:, rows][..., keep], alone.position_ids, rtol=0, atol=0)
        # teacher-forced log-probs of the batch's sampled completions, scored on the prompt alone
        replay = _with_completions(alone, sampled.completion_ids[rows], eos)
        with torch.no_grad():
            alone_logps = sequence_logprobs(model, replay)
        mask = sampled.completion_mask[rows].bool()
        torch.testing.assert_close(batch_logps[rows][mask], alone_logps[mask], rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# (4) vision tokens are never generated
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("share_prefix", [True, False], ids=["shared", "per_completion"])
def test_vision_tokens_are_suppressed(model, batch, eos, share_prefix):
    vision = torch.tensor(vision_special_token_ids(model.config))
    assert len(vision) >= 4

    def favour_vision(module, args, output):  # +50 on every vision token: without suppression they win
        output = output.clone()
        output[..., vision] += 50.0
        return output

    model.lm_head.register_forward_hook(favour_vision)
    unsuppressed = _sampled(model, batch, eos, share_prefix=share_prefix, suppress_token_ids=())
    assert torch.isin(unsuppressed.completion_ids, vision).float().mean() > 0.9  # the test can fail
    rollout = _sampled(model, batch, eos, share_prefix=share_prefix, temperature=3.0)
    assert not torch.isin(rollout.completion_ids, vision).any()


# ----------------------------------------------------------------------------------------------------------------
# (5) completion mask and truncation flags
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "mask", "truncated"),
    [
        ([[5, 6, 7]], [[1, 1, 1]], [True]),  # no EOS: truncated, all valid
        ([[9, 0, 0]], [[1, 0, 0]], [False]),  # EOS first: only the EOS counts
        ([[5, 9, 0]], [[1, 1, 0]], [False]),  # EOS included, pad after it excluded
        ([[5, 6, 8]], [[1, 1, 1]], [False]),  # second EOS id, at the last position
        ([[9, 8, 9]], [[1, 0, 0]], [False]),  # only the first EOS ends the completion
    ],
)
def test_completion_mask_from_eos(tokens, mask, truncated):
    m, t = completion_mask_from_eos(torch.tensor(tokens), [8, 9])
    assert m.tolist() == mask and t.tolist() == truncated


def _bias_eos(model, eos_id: int) -> None:
    def hook(module, args, output):
        output = output.clone()
        output[..., eos_id] += 50.0
        return output

    model.lm_head.register_forward_hook(hook)


@pytest.mark.parametrize("share_prefix", [True, False], ids=["shared", "per_completion"])
def test_truncation_and_min_new_tokens(model, batch, eos, share_prefix):
    full = _sampled(model, batch, eos, share_prefix=share_prefix, max_new_tokens=6, min_new_tokens=6)
    assert full.completion_ids.shape == (2 * G, 6)
    assert full.is_truncated.all() and (full.completion_mask == 1).all()
    assert not torch.isin(full.completion_ids, torch.tensor(eos)).any()

    _bias_eos(model, eos[0])  # EOS wins whenever allowed
    early = _sampled(model, batch, eos, share_prefix=share_prefix, max_new_tokens=6, min_new_tokens=3)
    assert early.completion_ids.shape == (2 * G, 4)  # stops once every row has ended
    assert (early.completion_ids[:, 3] == eos[0]).all()
    assert not early.is_truncated.any() and (early.completion_mask == 1).all()
    assert early.completion_lengths.tolist() == [4] * (2 * G)


def test_pad_after_eos_and_mask_consistency(model, batch, eos):
    _bias_eos(model, eos[0])
    model.lm_head.register_forward_hook(lambda m, a, out: out - 47.5 * (torch.arange(out.shape[-1]) == eos[0]))
    r = _sampled(model, batch, eos, max_new_tokens=12, temperature=1.0)  # EOS at +2.5: rows end at random steps
    lengths = r.completion_lengths
    assert r.completion_mask.shape == r.completion_ids.shape
    assert lengths.unique().numel() > 1
    for row, n in enumerate(lengths.tolist()):
        assert r.completion_mask[row, :n].all() and not r.completion_mask[row, n:].any()
        if r.is_truncated[row]:
            assert n == r.completion_length
        else:
            assert r.completion_ids[row, n - 1].item() in eos
            assert (r.completion_ids[row, n:] == eos[0]).all()  # filled with the pad token (here the first EOS)


# ----------------------------------------------------------------------------------------------------------------
# (6) the vision tower runs once per prompt with sharing, once per completion without
# ----------------------------------------------------------------------------------------------------------------


def test_vision_tower_calls(model, batch, eos):
    model.model.visual.requires_grad_(False)
    counter = VisionCalls(model)
    shared = _sampled(model, batch, eos)
    assert counter.videos == 2  # one video per prompt for the whole group
    with torch.no_grad():
        sequence_logprobs(model, shared)  # reference pass
    sequence_logprobs(model, shared).sum().backward()  # policy pass
    assert counter.videos == 2  # features reused: no further vision pass
    sequence_logprobs(model, shared, reuse_vision=False)
    assert counter.videos == 4  # re-encoded, but once per prompt

    counter.videos = 0
    plain = _sampled(model, batch, eos, share_prefix=False)
    assert counter.videos == 2 * G  # each completion row has its own video copy
    sequence_logprobs(model, plain, reuse_vision=False, share_prompt=False)
    assert counter.videos == 4 * G


def test_decode_completions_stops_at_the_first_stop_token():
    """GRPO and evaluation decode completions by one rule: each row up to and including its first stop token, so a
    token after it (pad, or anything the tokenizer would not drop) never reaches a reward or a predictions file."""
    from lit_videor2.rollout import Rollout, decode_completions
    from lit_videor2.rollout.decoding import completion_mask_from_eos

    class JoiningTokenizer:
        def batch_decode(self, rows, skip_special_tokens):
            assert skip_special_tokens
            return [" ".join(str(int(t)) for t in row) for row in rows]

    ids = torch.tensor([[5, 6, 2, 5, 5], [7, 8, 9, 4, 3], [2, 9, 9, 9, 9]])
    mask, truncated = completion_mask_from_eos(ids, [2])
    rollout = Rollout(None, 1, ids, mask, truncated, torch.zeros(3, 3, 5, dtype=torch.long))
    assert decode_completions(JoiningTokenizer(), rollout) == ["5 6 2", "7 8 9 4 3", "2"]
