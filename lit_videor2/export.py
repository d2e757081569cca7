"""``lit_videor2 export``: a training checkpoint -> a standard Hugging Face folder (model + processor).

::

    lit_videor2 export --ckpt runs/sft/checkpoints/last.ckpt --out exports/sft --merge-lora

The policy is rebuilt from the checkpoint's hyper-parameters (its :class:`~lit_videor2.models.policy.PolicySpec`)
through :func:`~lit_videor2.distributed.loading.load_policy` (the project's only ``from_pretrained`` call site), the
module's weights (keys prefixed ``model.``) are loaded into it, and then:

* without LoRA, or with ``--merge-lora``: the adapters are folded into the base weights (peft
  ``merge_and_unload``) and ``save_pretrained`` writes ``config.json``, ``*.safetensors``,
  ``generation_config.json`` and the processor files (tokenizer, chat template, video/image processor).
  ``AutoModelForImageTextToText.from_pretrained(OUT)`` (or the model class's) reloads it, and vLLM can serve it.
* with LoRA and without ``--merge-lora``: a peft adapter folder (``adapter_config.json``,
  ``adapter_model.safetensors``) + the processor, and a ``README.md`` saying how to use it. Its
  ``base_model_name_or_path`` is the policy path of the run.

A checkpoint may be a single ``.ckpt`` file or the folder a sharded (FSDP2 / ModelParallelStrategy) run writes;
a folder is consolidated in memory. The checkpoint is a trusted file of one's own run: it is unpickled
(``weights_only=False``) because the hyper-parameters hold the policy spec dataclass.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lit_videor2.checkpoints.complete import require_complete
from lit_videor2.checkpoints.resharding import check_checkpoint_files, read_full_checkpoint
from lit_videor2.distributed.loading import load_policy
from lit_videor2.models.policy import LoraSpec, PolicySpec

log = logging.getLogger(__name__)

MODULE_PREFIX = "model."

ADAPTER_NOTE = """# LoRA adapter (not merged)

This folder holds only the LoRA adapters of a lit_videor2 run, over the base model `{base}`, plus its processor.
Load it with peft:

```python
from transformers import AutoModelForImageTextToText
from peft import PeftModel
base = AutoModelForImageTextToText.from_pretrained("{base}")
model = PeftModel.from_pretrained(base, "{out}")
```

For a standalone Hugging Face model (what `from_pretrained` alone and vLLM load), export again with `--merge-lora`:

    lit_videor2 export --ckpt {ckpt} --out OTHER_DIR --merge-lora
"""


def policy_spec_from_hparams(hparams: Mapping[str, Any]) -> PolicySpec:
    """The :class:`PolicySpec` saved in a checkpoint's ``hyper_parameters`` (a dataclass or its dict form)."""
    if "policy" not in hparams:
        raise KeyError(
            f"checkpoint hyper_parameters have no 'policy' (keys: {sorted(hparams)}); "
            "was it written by a lit_videor2 PolicyModule (SFTModule/GRPOModule)?"
        )
    spec = hparams["policy"]
    if isinstance(spec, PolicySpec):
        return spec
    if isinstance(spec, Mapping):
        d = dict(spec.get("init_args", spec))
        lora = d.get("lora")
        if isinstance(lora, Mapping):
            d["lora"] = LoraSpec(**dict(lora.get("init_args", lora)))
        return PolicySpec(**d)
    raise TypeError(f"checkpoint 'policy' hyper-parameter has unexpected type {type(spec).__name__}")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint as a dict: a ``.ckpt`` file, or a sharded-checkpoint folder (consolidated in memory by
    :func:`~lit_videor2.checkpoints.resharding.read_full_checkpoint`, the reader resume uses). A checkpoint that is
    not whole (its save was interrupted) is refused in one line naming the newest whole one beside it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    require_complete(path)
    check_checkpoint_files(path)
    return read_full_checkpoint(path, weights_only=False)


def module_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The policy's weights: the checkpoint's ``state_dict`` entries under ``model.``, prefix removed."""
    state = checkpoint["state_dict"]
    out = {k[len(MODULE_PREFIX) :]: v for k, v in state.items() if k.startswith(MODULE_PREFIX)}
    if not out:
        raise KeyError(f"checkpoint state_dict has no keys starting with {MODULE_PREFIX!r} (first: {list(state)[:3]})")
    return out


def load_checkpoint_policy(
    checkpoint: Mapping[str, Any], *, policy_path: str | None = None
) -> tuple[nn.Module, PolicySpec]:
    """Rebuild the policy of a checkpoint (LoRA wrapper included) with its trained weights; eval mode."""
    spec = policy_spec_from_hparams(checkpoint["hyper_parameters"])
    # Export for inference: no activation checkpointing (it also turns the KV cache off in the saved config).
    spec = dataclasses.replace(spec, gradient_checkpointing=False)
    if policy_path is not None:
        spec = dataclasses.replace(spec, path=policy_path)
    model = load_policy(spec)
    missing, unexpected = model.load_state_dict(module_state_dict(checkpoint), strict=False)
    # Tied weights (lm_head <-> embeddings) may be saved under one name only.
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if not any(k.endswith(t) for t in tied)]
    if missing or unexpected:
        raise RuntimeError(
            f"checkpoint weights do not match the policy {spec.path!r}: missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}. "
            "Is --policy-path the base model the run was trained from?"
        )
    return model.eval(), spec


def export_checkpoint(
    ckpt: str | Path,
    out: str | Path,
    *,
    merge_lora: bool = False,
    dtype: str | None = None,
    policy_path: str | None = None,
) -> Path:
    """Write the Hugging Face folder of ``ckpt`` to ``out`` (see the module docstring); return ``out``."""
    from lit_videor2.models.hub import load_processor

    out = Path(out)
    checkpoint = read_checkpoint(ckpt)
    model, spec = load_checkpoint_policy(checkpoint, policy_path=policy_path)
    del checkpoint
    is_peft = hasattr(model, "merge_and_unload")
    if is_peft and merge_lora:
        model = model.merge_and_unload()
        is_peft = False
    if dtype is not None:
        model = model.to(getattr(torch, dtype))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    load_processor(spec.path).save_pretrained(out)
    if is_peft:
        note = ADAPTER_NOTE.format(base=spec.path, out=out, ckpt=ckpt)
        (out / "README.md").write_text(note)
        log.warning("LoRA adapters exported unmerged to %s (peft folder); use --merge-lora for a standalone model", out)
    else:
        (out / "lit_videor2_export.json").write_text(
            json.dumps(
                {"checkpoint": str(ckpt), "base_model": spec.path, "lora_merged": spec.lora is not None}, indent=2
            )
        )
    return out


def build_parser(prog: str = "lit_videor2 export") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True, help="Lightning checkpoint: a .ckpt file or a sharded-checkpoint folder")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument(
        "--merge-lora",
        action="store_true",
        help="fold LoRA adapters into the weights: a standalone HF model (without it, a LoRA run exports a peft adapter folder)",
    )
    p.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], default=None, help="cast weights before saving"
    )
    p.add_argument(
        "--policy-path", default=None, help="base model folder/hub id, if it moved since training (default: the run's)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = export_checkpoint(
        args.ckpt, args.out, merge_lora=args.merge_lora, dtype=args.dtype, policy_path=args.policy_path
    )
    print(f"exported {args.ckpt} -> {out}")  # returns None: the console script's sys.exit(main()) must exit 0


if __name__ == "__main__":
    main()
