"""``lit_videor2 export``: a trained checkpoint reloads with ``from_pretrained`` and gives the same logits."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen2_5_VLForConditionalGeneration

from lit_videor2.cli import main as cli_main
from tests.fixtures import synth_dir, tiny_model_dir, tiny_models  # noqa: F401
from tests.sft_utils import first_batch, logits, make_datamodule, make_module, make_trainer


def train(tmp_path, model_dir, data_dir, *, lora: bool, steps: int = 3):
    """A few CPU steps at a high learning rate (the adapters move far from their zero init); the checkpoint."""
    L.seed_everything(0)
    module = make_module(model_dir, lora=lora, lr=3e-2 if lora else 1e-2)
    trainer = make_trainer(tmp_path / "run", max_steps=steps)
    trainer.fit(module, make_datamodule(data_dir, model_dir))
    ckpt = tmp_path / "run" / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    return module, ckpt


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_model_dir, synth_dir):  # noqa: F811
    return train(tmp_path_factory.mktemp("lora"), tiny_model_dir, synth_dir, lora=True)


@pytest.mark.slow
def test_merged_lora_export_reloads_with_same_logits(tmp_path, lora_run, tiny_model_dir, synth_dir):  # noqa: F811
    module, ckpt = lora_run
    out = tmp_path / "merged"
    cli_main(["export", "--ckpt", str(ckpt), "--out", str(out), "--merge-lora"])
    # What a server (vLLM) and from_pretrained read: config, safetensors weights, generation config, processor.
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "chat_template.jinja"):
        assert (out / name).is_file(), name
    assert not (out / "adapter_config.json").exists()
    assert json.loads((out / "config.json").read_text())["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]

    inputs = first_batch(synth_dir, tiny_model_dir)
    expected = logits(module.model, inputs)  # the peft model with its trained adapters, dropout off
    base = logits(AutoModelForImageTextToText.from_pretrained(tiny_model_dir), inputs)
    assert (expected - base).abs().max() > 1e-3, "the adapters did not change the model: the test cannot fail"
    for cls in (AutoModelForImageTextToText, Qwen2_5_VLForConditionalGeneration):
        reloaded = cls.from_pretrained(out)
        assert not any("lora" in n for n, _ in reloaded.named_parameters())
        torch.testing.assert_close(logits(reloaded, inputs), expected, atol=1e-5, rtol=0)
    processor = AutoProcessor.from_pretrained(out)
    assert processor.tokenizer.get_vocab() == AutoProcessor.from_pretrained(tiny_model_dir).tokenizer.get_vocab()


@pytest.mark.slow
def test_unmerged_lora_export_is_a_peft_adapter(tmp_path, lora_run, tiny_model_dir, synth_dir):  # noqa: F811
    from peft import PeftModel

    module, ckpt = lora_run
    out = tmp_path / "adapter"
    cli_main(["export", "--ckpt", str(ckpt), "--out", str(out)])
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert (out / "tokenizer.json").is_file() and "--merge-lora" in (out / "README.md").read_text()
    inputs = first_batch(synth_dir, tiny_model_dir)
    model = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(tiny_model_dir), out)
    torch.testing.assert_close(logits(model, inputs), logits(module.model, inputs), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_full_finetune_export_reloads_identically(tmp_path, tiny_model_dir, synth_dir):  # noqa: F811
    module, ckpt = train(tmp_path, tiny_model_dir, synth_dir, lora=False, steps=2)
    out = tmp_path / "full"
    cli_main(["export", "--ckpt", str(ckpt), "--out", str(out), "--merge-lora"])  # no LoRA: the flag is harmless
    inputs = first_batch(synth_dir, tiny_model_dir)
    expected = logits(module.model, inputs)
    assert (expected - logits(AutoModelForImageTextToText.from_pretrained(tiny_model_dir), inputs)).abs().max() > 1e-3
    torch.testing.assert_close(
        logits(AutoModelForImageTextToText.from_pretrained(out), inputs), expected, atol=0, rtol=0
    )


def test_export_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cli_main(["export", "--ckpt", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "out")])
    torch.save({"hyper_parameters": {"lr": 1.0}, "state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(KeyError, match="no 'policy'"):
        cli_main(["export", "--ckpt", str(tmp_path / "other.ckpt"), "--out", str(tmp_path / "out")])


def test_policy_spec_from_cli_hyper_parameters():
    """LightningCLI runs save the policy as a plain dict (their checkpoints load with weights_only=True)."""
    from lit_videor2.export import policy_spec_from_hparams
    from lit_videor2.models.policy import LoraSpec, PolicySpec

    hp = {
        "_class_path": "lit_videor2.modules.sft.SFTModule",
        "policy": {"path": "m", "dtype": "bfloat16", "lora": {"r": 8}},
    }
    assert policy_spec_from_hparams(hp) == PolicySpec(path="m", dtype="bfloat16", lora=LoraSpec(r=8))
    assert policy_spec_from_hparams({"policy": {"path": "m", "lora": None}}) == PolicySpec(path="m")
