"""The log-prob passes: prompt sharing equals full rows (log-probs and LLM gradients), with the project's per-layer
activation checkpointing on and off, on Qwen2-VL, Qwen2.5-VL and Qwen3-VL (two left-padded prompts of different
lengths); chunked log-probs from hidden states equal the full log-softmax."""

from __future__ import annotations

import copy

import pytest
import torch

from lit_videor2.data.collate import VideoCollator
from lit_videor2.data.dataset import VideoSample
from lit_videor2.data.frames import Frames
from lit_videor2.data.records import VideoRecord
from lit_videor2.distributed.activation_checkpointing import (
    FunctionalCache,
    enable_activation_checkpointing,
    is_activation_checkpointing,
)
from lit_videor2.losses.logprobs import hidden_logprobs
from lit_videor2.models.hub import load_processor
from lit_videor2.rollout import PromptBatch, generate_group, sequence_logprobs, stop_token_ids

SIDE = {"qwen2_vl": 56, "qwen2_5_vl": 56, "qwen3_vl": 64}  # multiples of patch x merge (28, 32)


def _batch(processor, side: int) -> PromptBatch:
    samples = []
    for seed, (n, fps) in enumerate([(4, 2.0), (2, 1.0)]):  # different video lengths and questions: left padding
        g = torch.Generator().manual_seed(seed)
        frames = torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=g)
        question = "What happens " + "first? " * (3 * seed + 1)
        record = VideoRecord(id=f"r{seed}", video="v.mp4", question=question, answer="A")
        samples.append(VideoSample(record, Frames(frames, [i / fps for i in range(n)], n / fps, "test")))
    return PromptBatch.from_collated(VideoCollator(processor, "prompt")(samples))


def _grads(model, rollout, **kw):
    model.zero_grad(set_to_none=True)
    logps = sequence_logprobs(model, rollout, temperature=0.9, **kw)
    weights = torch.linspace(-1, 1, logps.numel()).view_as(logps)  # distinct per token, like advantages
    (logps * weights * rollout.completion_mask).sum().backward()
    return logps.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_grads_close(grads, base):
    assert grads.keys() == base.keys() and grads
    for name, g in grads.items():
        torch.testing.assert_close(g, base[name], rtol=0, atol=1e-5, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_shared_prompt_equals_full_rows_with_and_without_checkpointing(arch, tiny_models):
    from transformers import AutoModelForImageTextToText

    folder = tiny_models(arch)
    processor = load_processor(str(folder))
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float64).train()
    model.model.visual.requires_grad_(False)
    batch = _batch(processor, SIDE[arch])
    assert (batch.attention_mask == 0).any(), "the two prompts must differ in length (left padding)"
    rollout = generate_group(
        model,
        batch,
        group_size=3,
        max_new_tokens=6,
        eos_token_ids=stop_token_ids(processor.tokenizer),
        temperature=1.5,
        generator=torch.Generator().manual_seed(0),
    )
    base_logps, base_grads = _grads(model, rollout, share_prompt=False, reuse_vision=False)
    checkpointed = copy.deepcopy(model)
    assert enable_activation_checkpointing(checkpointed) == len(checkpointed.model.language_model.layers)
    assert is_activation_checkpointing(checkpointed) and not is_activation_checkpointing(model)
    for m in (model, checkpointed):
        for share in (True, False):
            logps, grads = _grads(m, rollout, share_prompt=share, reuse_vision=share)
            torch.testing.assert_close(logps, base_logps, rtol=0, atol=1e-5)
            _assert_grads_close(grads, base_grads)
    with torch.no_grad():  # reference / old-policy passes take the same path and agree with the policy pass
        torch.testing.assert_close(sequence_logprobs(checkpointed, rollout, temperature=0.9), base_logps)


def test_checkpointed_layers_recompute_in_backward(tiny_models):
    """The wrapper really checkpoints: backward replays each decoder layer's forward once more."""
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_models("qwen2_5_vl")).train()
    enable_activation_checkpointing(model)
    layer = model.model.language_model.layers[0]
    calls = []
    layer.mlp.register_forward_pre_hook(lambda *a: calls.append(torch.is_grad_enabled()))
    ids = torch.randint(0, 100, (2, 7))
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=torch.zeros_like(ids))
    assert len(calls) == 1
    out.logits.sum().backward()
    assert len(calls) == 2, "backward did not recompute the checkpointed layer"


def test_mutating_cache_in_checkpointed_training_forward_is_refused(tiny_models):
    from transformers import AutoModelForImageTextToText, DynamicCache

    model = AutoModelForImageTextToText.from_pretrained(tiny_models("qwen2_5_vl")).train()
    enable_activation_checkpointing(model)
    ids = torch.randint(0, 100, (1, 5))
    kw = dict(attention_mask=torch.ones_like(ids), mm_token_type_ids=torch.zeros_like(ids))
    with torch.no_grad():
        cache = model(input_ids=ids, use_cache=True, **kw).cache
    assert cache.get_seq_length() == 5 and not isinstance(cache, FunctionalCache)
    with pytest.raises(ValueError, match="DynamicCache holding 5 tokens"):
        model(input_ids=ids, cache=cache, use_cache=True, attention_mask=torch.ones(1, 10, dtype=torch.long))
    assert isinstance(DynamicCache(), DynamicCache)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_hidden_logprobs_equal_full_log_softmax(temperature):
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 5, 8, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(11, 8, dtype=torch.float64, generator=g, requires_grad=True)
    labels = torch.randint(0, 11, (3, 5), generator=g)
    labels[0, -1] = -100
    out = hidden_logprobs(hidden, weight, labels, temperature=temperature, chunk_size=4)
    full = torch.log_softmax(hidden @ weight.t() / temperature, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    full = full.masked_fill(labels < 0, 0.0)
    torch.testing.assert_close(out, full)
    torch.testing.assert_close(
        torch.autograd.grad(out.sum(), (hidden, weight)), torch.autograd.grad(full.sum(), (hidden, weight))
    )
    with pytest.raises(ValueError, match="labels"):
        hidden_logprobs(hidden, weight, labels[:, :2])
