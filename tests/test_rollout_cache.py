"""The preallocated decode caches (issue 30) against the cache that grows by concatenation every token.

``shared`` (the default: the prompt's keys and values once per prompt, the G rows attending over one copy) and
``static`` (transformers' ``StaticCache``, the prompt copied into every row) on tiny Qwen2-VL, Qwen2.5-VL and
Qwen3-VL models, with two left-padded video prompts of different lengths and fps (``tests/test_rollout_archs.py``'s
batch): the same greedy tokens as ``dynamic``, the log-probs of the generated tokens at every decode step within
1e-5 of it and of a teacher-forced full forward, the same seeded sampled tokens (random numbers drawn in the same
order), a seeded run that reproduces itself, and nothing that grows per token (the masks and the cache tensors keep
their storage through the decode). A compiled decode step (``compile_decode``) gives the same tokens on CPU and
does not recompile for a new cache of the same shapes.
"""

from __future__ import annotations

import pytest
import torch

import lit_videor2.rollout.decoding as decoding
import lit_videor2.rollout.group_cache as group_cache
from lit_videor2.models.hub import load_processor
from lit_videor2.rollout import generate_group, sequence_logprobs, stop_token_ids
from lit_videor2.rollout.decoding import preallocated_cache, static_cache_bytes, static_cache_length
from lit_videor2.rollout.group_cache import GroupDecodeCache, group_cache_bytes, group_decode_attention
from tests.test_rollout_archs import SIZE, _batch

ARCHS = ["qwen2_5_vl", "qwen2_vl", "qwen3_vl"]
KINDS = ("dynamic", "static", "shared")
NEW = 10
_STEP = decoding._DecodeStep.__call__  # the unwrapped decode step


class StepRecorder:
    """Wraps the decode step: records each step's logits, the mask and cache tensors it ran with."""

    def __init__(self, monkeypatch) -> None:
        self.logits: list[torch.Tensor] = []
        self.masks: list[tuple[int, tuple[int, ...]]] = []  # (data pointer, shape) of the mask at each step
        self.keys: list[tuple[int, ...]] = []  # data pointers of every layer's keys after each step

        def call(this, ids, position):
            out = _STEP(this, ids, position)
            self.logits.append(out)
            mask = this.cache.completion_mask if this.group else this.mask
            self.masks.append((mask.data_ptr(), tuple(mask.shape)))
            self.keys.append(tuple(layer.keys.data_ptr() for layer in this.cache.layers))
            return out

        monkeypatch.setattr(decoding._DecodeStep, "__call__", call)


def _model(tiny_models, arch):
    from transformers import AutoModelForImageTextToText

    folder = tiny_models(arch)
    return AutoModelForImageTextToText.from_pretrained(folder).eval(), load_processor(str(folder))


def _step_logprobs(logits: list[torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """``[N, T-1]`` log-probs of generated tokens 1..T-1 under the recorded decode-step logits."""
    steps = torch.stack(logits, dim=1)[:, : tokens.shape[1] - 1].float()  # [N, T-1, V]
    return steps.log_softmax(-1).gather(-1, tokens[:, 1:, None]).squeeze(-1)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_preallocated_caches_equal_dynamic_cache(arch, tiny_models, monkeypatch):
    model, processor = _model(tiny_models, arch)
    batch = _batch(processor, SIZE.get(arch, 56))
    eos = stop_token_ids(processor.tokenizer)
    common = dict(group_size=3, max_new_tokens=NEW, min_new_tokens=NEW, eos_token_ids=eos)
    runs = {}
    for kind in KINDS:
        rec = StepRecorder(monkeypatch)
        runs[kind] = generate_group(model, batch, **common, do_sample=False, decode_cache=kind), rec
    dyn, dyn_rec = runs["dynamic"]
    dyn_lp = _step_logprobs(dyn_rec.logits, dyn.completion_ids)
    for kind in ("static", "shared"):
        got, rec = runs[kind]
        assert torch.equal(got.completion_ids, dyn.completion_ids), kind
        assert got.completion_ids.shape[1] == NEW and len(rec.logits) == NEW - 1
        lp = _step_logprobs(rec.logits, got.completion_ids)
        torch.testing.assert_close(lp, dyn_lp, rtol=0, atol=1e-5, msg=kind)
        # ... and with a teacher-forced forward over prompt + completion (no cache at all).
        full = sequence_logprobs(model, got, share_prompt=False, reuse_vision=False, temperature=1.0)  # [N, T]
        torch.testing.assert_close(lp, full[:, 1:], rtol=0, atol=1e-5, msg=kind)
        # Nothing grows or moves per token: one mask and one key tensor per layer, the same shapes every step.
        assert set(rec.masks) == {rec.masks[0]} and len(set(rec.keys)) == 1, kind
    slots = static_cache_length(batch.length, NEW)
    assert runs["static"][1].masks[0][1] == (6, 1, 1, slots)  # sdpa: one additive mask over every slot
    assert runs["shared"][1].masks[0][1] == (6, 1, 1, NEW - 1)  # the completion slots; the prompt's is [2, 1, 1, Lp]
    # The dynamic path concatenates: its mask grows by one column per step.
    assert [shape[1] for _, shape in dyn_rec.masks] == [batch.length + 1 + t for t in range(NEW - 1)]
    assert model.config.get_text_config()._attn_implementation == "sdpa", "the decode restores the attention"

    # Sampling: the same seed draws the same tokens on every cache, and a seeded run reproduces itself.
    sampled = {}
    for name, kind in (("dynamic", "dynamic"), ("static", "static"), ("shared", "shared"), ("again", "shared")):
        sampled[name] = generate_group(
            model, batch, **common, temperature=1.5, top_k=20, generator=torch.Generator().manual_seed(0),
            decode_cache=kind,
        ).completion_ids  # fmt: skip
    assert torch.equal(sampled["shared"], sampled["again"])
    assert torch.equal(sampled["shared"], sampled["dynamic"]) and torch.equal(sampled["static"], sampled["dynamic"])
    assert not torch.equal(sampled["shared"][0], sampled["shared"][1]), "sampling must differ between group rows"


def test_preallocated_cache_places_the_prompt_once_per_row(tiny_models):
    model, processor = _model(tiny_models, "qwen2_5_vl")
    batch = _batch(processor, 56)
    ids = batch.input_ids[:, -4:]  # a text-only prefill keeps the check quick
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
    keys = [layer.keys.clone() for layer in out.cache.layers]
    cache = preallocated_cache(model, out.cache, 3, 9)
    for layer, k in zip(cache.layers, keys):
        assert layer.keys.shape == (6, k.shape[1], 9, k.shape[3])
        torch.testing.assert_close(layer.keys[:, :, :4], k.repeat_interleave(3, dim=0), rtol=0, atol=0)
        assert not layer.keys[:, :, 4:].any()
        assert int(layer.get_seq_length()) == 4
    assert all(layer.keys is None for layer in out.cache.layers), "the prefill cache is released as it is copied"
    with pytest.raises(ValueError, match="cannot hold a 4-token prompt"):
        with torch.no_grad():
            again = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
        preallocated_cache(model, again.cache, 3, 3)


def test_group_cache_holds_the_prompt_once(tiny_models):
    model, _ = _model(tiny_models, "qwen2_5_vl")
    ids = torch.arange(10, 16).view(2, 3)  # two text prompts of 3 tokens, the first left-padded by one
    mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, use_cache=True)
    keys = [layer.keys for layer in out.cache.layers]
    cache = GroupDecodeCache(out.cache, mask, group_size=4, completion_slots=5)
    for layer, k in zip(cache.layers, keys):
        assert layer.prompt_keys is k, "the prompt's keys are taken over, not copied per row"
        assert layer.keys.shape == (8, k.shape[1], 5, k.shape[3]) and not layer.keys.any()
    minimum = torch.finfo(torch.float32).min
    assert cache.prompt_mask.shape == (2, 1, 1, 3) and cache.prompt_mask[0, 0, 0].tolist() == [minimum, 0, 0]
    assert (cache.completion_mask == minimum).all() and cache.completion_mask.shape == (8, 1, 1, 5)
    cache.open_slot()
    cache.advance()
    assert cache.completion_mask[..., 0].eq(0).all() and (cache.completion_mask[..., 1:] == minimum).all()
    assert int(cache.slot) == 1 and cache.get_seq_length() == 4
    assert cache.nbytes() == group_cache_bytes(model.config, 2, 3, 8, 5, torch.float32)
    padded = GroupDecodeCache(model(input_ids=ids, attention_mask=mask, use_cache=True).cache, mask, 4, 5,
                              prompt_multiple=8)  # fmt: skip
    assert padded.layers[0].prompt_keys.shape[2] == 8 and (padded.prompt_mask[..., 3:] == minimum).all()
    with pytest.raises(RuntimeError, match="runs decode steps on a GroupDecodeCache only"):
        group_decode_attention(
            model.model.language_model.layers[0].self_attn, torch.zeros(8, 4, 1, 16), None, None, None
        )


def test_group_attention_off_cpu_path_equals_the_fused_kernel(tiny_models, monkeypatch):
    """The float32 matmul path (what runs off CPU) gives the fused kernel's output and log-sum-exp, and the same
    greedy tokens end to end."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, s, 16, generator=g) for s in (6, 40, 40))
    mask = torch.zeros(2, 1, 1, 40).masked_fill(torch.arange(40) >= 33, torch.finfo(torch.float32).min)
    fused = group_cache._attention_with_lse(q, k, v, mask, 0.25)
    monkeypatch.setattr(group_cache, "FUSED_CPU_ATTENTION", False)
    matmul = group_cache._attention_with_lse(q, k, v, mask, 0.25)
    for a, b in zip(fused, matmul):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)

    model, processor = _model(tiny_models, "qwen2_5_vl")
    batch = _batch(processor, 56)
    eos = stop_token_ids(processor.tokenizer)
    kw = dict(group_size=2, max_new_tokens=NEW, min_new_tokens=NEW, eos_token_ids=eos, do_sample=False)
    off_cpu = generate_group(model, batch, **kw).completion_ids
    monkeypatch.setattr(group_cache, "FUSED_CPU_ATTENTION", True)
    assert torch.equal(off_cpu, generate_group(model, batch, **kw, decode_cache="dynamic").completion_ids)


def test_static_cache_size():
    from types import SimpleNamespace

    text = SimpleNamespace(num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, hidden_size=3584)
    config = SimpleNamespace(get_text_config=lambda decoder: text)
    # Qwen2.5-VL-7B: 2 (K, V) x 28 layers x 4 heads x 128 dims x 2 bytes = 56 KiB per slot and row.
    assert static_cache_bytes(config, 1, 1, torch.bfloat16) == 57_344
    assert static_cache_length(1000, 1024) == 2023
    assert static_cache_length(1000, 1024, compiled=True) == 2048
    assert static_cache_length(1000, 1) == 1000


def test_bad_decode_cache_settings(tiny_models):
    model, processor = _model(tiny_models, "qwen2_5_vl")
    batch = _batch(processor, 56)
    eos = stop_token_ids(processor.tokenizer)
    with pytest.raises(ValueError, match="decode_cache must be 'shared', 'static' or 'dynamic', not 'paged'"):
        generate_group(model, batch, group_size=2, max_new_tokens=2, eos_token_ids=eos, decode_cache="paged")
    with pytest.raises(ValueError, match="compile_decode needs a preallocated cache"):
        generate_group(
            model, batch, group_size=2, max_new_tokens=2, eos_token_ids=eos, decode_cache="dynamic", compile_decode=True
        )


@pytest.mark.slow
def test_compiled_decode_step_gives_the_same_tokens(tiny_models):
    """``compile_decode`` on CPU (inductor): the same greedy and seeded sampled tokens as the eager step."""
    model, processor = _model(tiny_models, "qwen2_5_vl")
    batch = _batch(processor, 56)
    eos = stop_token_ids(processor.tokenizer)
    common = dict(group_size=2, max_new_tokens=NEW, min_new_tokens=NEW, eos_token_ids=eos)
    from torch._dynamo.utils import counters

    graphs = []
    for sample in (False, True):
        kw = dict(do_sample=sample, temperature=1.5) if sample else dict(do_sample=False)
        got = {
            compiled: generate_group(
                model, batch, **common, **kw, generator=torch.Generator().manual_seed(0), compile_decode=compiled
            ).completion_ids
            for compiled in (False, True)
        }
        assert torch.equal(got[True], got[False])
        graphs.append(counters["stats"]["unique_graphs"])
    # Fixed shapes: the second call (a new cache, the same shapes) reuses the compiled step, nothing recompiles.
    assert graphs[0] >= 1 and graphs[1] == graphs[0], graphs
