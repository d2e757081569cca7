"""Policy loading: freezing, LoRA placement, clear errors, and the three supported Qwen-VL generations."""

from __future__ import annotations

import json

import pytest
import torch

from lit_videor2.distributed.loading import load_policy
from lit_videor2.models.policy import (
    LLM_LINEAR_NAMES,
    LoraSpec,
    PolicySpec,
    decoder_layers,
    inner_model,
    language_model,
    vision_tower,
)
from tests.fixtures import SMALL, SMALL_QWEN3, synth_dir, tiny_model_dir, tiny_models  # noqa: F401


def trainable(module: torch.nn.Module) -> set[bool]:
    return {p.requires_grad for p in module.parameters()}


def test_vision_frozen_by_default_rest_trainable(tiny_model_dir):  # noqa: F811
    model = load_policy(PolicySpec(path=str(tiny_model_dir)))
    assert trainable(vision_tower(model)) == {False}  # tower and merger
    assert trainable(vision_tower(model).merger) == {False}
    lm = language_model(model)
    assert trainable(lm.layers) == trainable(lm.embed_tokens) == trainable(lm.norm) == {True}
    assert trainable(inner_model(model).lm_head) == {True}


@pytest.mark.parametrize(
    ("flag", "part"),
    [
        ("freeze_llm", lambda m: language_model(m).layers),
        ("freeze_embeddings", lambda m: language_model(m).embed_tokens),
        ("freeze_lm_head", lambda m: inner_model(m).lm_head),
    ],
)
def test_freeze_options_freeze_only_their_part(tiny_model_dir, flag, part):  # noqa: F811
    model = load_policy(PolicySpec(path=str(tiny_model_dir), freeze_vision=False, **{flag: True}))
    frozen = {id(p) for p in part(model).parameters()}
    if flag == "freeze_llm":
        frozen |= {id(p) for p in language_model(model).norm.parameters()}
    for name, p in model.named_parameters():
        assert p.requires_grad == (id(p) not in frozen), name


def test_vision_trainable_when_asked(tiny_model_dir):  # noqa: F811
    model = load_policy(PolicySpec(path=str(tiny_model_dir), freeze_vision=False))
    assert trainable(vision_tower(model)) == {True}


def test_lora_adapts_only_language_model_linears(tiny_model_dir):  # noqa: F811
    model = load_policy(PolicySpec(path=str(tiny_model_dir), lora=LoraSpec(r=4, alpha=8, dropout=0.05)))
    adapted = [n for n, m in model.named_modules() if hasattr(m, "lora_A") and len(m.lora_A)]
    layers = len(decoder_layers(model))
    assert len(adapted) == layers * len(LLM_LINEAR_NAMES)  # q, k, v, o, gate, up, down in every decoder layer
    assert all(".language_model.layers." in n for n in adapted)
    assert {n.rsplit(".", 1)[-1] for n in adapted} == set(LLM_LINEAR_NAMES)
    # Qwen2.5-VL's vision MLP has gate/up/down_proj too: none of them is adapted.
    assert any(n.endswith("mlp.gate_proj") for n, _ in vision_tower(model).named_modules())
    assert not any("lora" in n for n, _ in vision_tower(model).named_modules())
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in n for n in trained)  # base weights frozen, adapters trained
    cfg = model.peft_config["default"]
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout) == (4, 8, 0.05)


def test_lora_reference_defaults():
    spec = LoraSpec()
    assert (spec.r, spec.alpha, spec.dropout) == (64, 64, 0.05)
    assert spec.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_missing_model_path_says_what_to_do(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError) as err:
        load_policy(PolicySpec(path=str(missing)))
    msg = str(err.value)
    assert str(missing) in msg and "tiny-model" in msg and "hub id" in msg  # names the path and both remedies


def test_text_only_config_is_rejected(tmp_path):
    from transformers import Qwen2Config

    Qwen2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"'qwen2'.*no vision tower.*Qwen2.5-VL"):
        load_policy(PolicySpec(path=str(tmp_path)))


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_each_generation_loads_trains_with_lora(arch, tiny_models, synth_dir):  # noqa: F811
    """Load with LoRA, one SFT loss on a real video batch, gradients only on the language-model adapters."""
    from lit_videor2.data.datamodule import VideoDataModule
    from lit_videor2.rollout.forward import assistant_token_loss

    model_dir = tiny_models(arch)
    model = load_policy(PolicySpec(path=str(model_dir), lora=LoraSpec(r=4, alpha=8)))
    expected = json.loads((model_dir / "config.json").read_text())["architectures"][0]
    assert type(inner_model(model)).__name__ == expected
    dm = VideoDataModule(
        processor=str(model_dir),
        train_file=str(synth_dir / "train.json"),
        batch_size=2,
        num_workers=0,
        shuffle=False,
        sampling=SMALL_QWEN3 if arch == "qwen3_vl" else SMALL,
    )
    batch = next(iter(dm.train_dataloader()))
    loss, n_tokens = assistant_token_loss(model, batch)
    assert torch.isfinite(loss) and n_tokens > 0
    loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad and all("lora_" in n and ".language_model." in n for n in with_grad)


def test_gradient_checkpointing_enabled(tiny_model_dir):  # noqa: F811
    model = load_policy(PolicySpec(path=str(tiny_model_dir), gradient_checkpointing=True))
    from lit_videor2.distributed.activation_checkpointing import is_activation_checkpointing

    assert is_activation_checkpointing(model) and not inner_model(model).config.use_cache


def test_processor_of_another_model_is_reported(tiny_models):
    """A processor whose patch size / vocabulary differs from the model's is named, with what to do."""
    from lit_videor2.distributed.loading import load_policy
    from lit_videor2.models.hub import load_processor
    from lit_videor2.models.policy import PolicySpec, check_processor_matches

    model = load_policy(PolicySpec(path=str(tiny_models("qwen2_5_vl"))))
    check_processor_matches(model, load_processor(str(tiny_models("qwen2_5_vl"))))  # its own: fine
    other = load_processor(str(tiny_models("qwen3_vl")))  # patch 16, not 14
    with pytest.raises(
        ValueError, match="patch_size 16 \\(processor\\) vs patch_size 14 \\(model\\).*Load the processor"
    ):
        check_processor_matches(model, other)


def test_qwen2_vl_processor_with_qwen2_5_vl_model_is_refused(tiny_models):
    """Same sizes and tokens, but Qwen2-VL's processor drops second_per_grid_ts: refused, naming the fitting class."""
    from lit_videor2.distributed.loading import load_policy
    from lit_videor2.models.hub import load_processor
    from lit_videor2.models.policy import PolicySpec, check_processor_matches

    processor = load_processor(str(tiny_models("qwen2_vl")))
    assert type(processor).__name__ == "Qwen2VLProcessor"
    model = load_policy(PolicySpec(path=str(tiny_models("qwen2_5_vl"))))
    with pytest.raises(
        ValueError, match="Qwen2VLProcessor, but qwen2_5_vl models need Qwen2_5_VLProcessor.*second_per"
    ):
        check_processor_matches(model, processor, processor_path="data.processor (x)")
    check_processor_matches(load_policy(PolicySpec(path=str(tiny_models("qwen2_vl")))), processor)  # its own: fine


def test_video_token_mismatch_error_says_what_to_fix():
    from lit_videor2.models.policy import explain_video_token_mismatch

    err = explain_video_token_mismatch(
        ValueError("Video features and video tokens do not match, tokens: 3, features: 4")
    )
    assert "max_prompt_length" in str(err) and "suppress" in str(err)
    other = ValueError("something else")
    assert explain_video_token_mismatch(other) is other
