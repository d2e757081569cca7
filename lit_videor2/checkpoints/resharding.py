"""Training checkpoints that resume on any number of ranks: read, check and reshard what the project writes.

What the strategies write
-------------------------
* One process and DDP: a Lightning ``.ckpt`` file. Full tensors; the optimizer state is keyed by *position*
  (``torch.optim.Optimizer.state_dict``: parameter ``i`` of the optimizer's groups, flattened in order).
* FSDP2 (Lightning's ``ModelParallelStrategy``): a ``torch.distributed.checkpoint`` (DCP) folder: ``.metadata``, one
  ``__<rank>_0.distcp`` file of shards per rank, and Lightning's ``meta.pt`` (loops, schedulers, callbacks, data
  position, RNG, hyper-parameters). Its optimizer state is keyed by parameter *name*
  (``torch.distributed.checkpoint.state_dict.get_optimizer_state_dict``).

How each is loaded (:func:`load_checkpoint`)
-------------------------------------------
=====================  ===========================================================================================
folder -> FSDP2 (N)    DCP loads into this run's sharded model and optimizer state dicts: DCP reshards on load, so
                       N need not be the writer's rank count (Lightning's own path, plus the two fixes below).
file -> FSDP2 (N)      every rank reads the file (memory-mapped); ``set_model_state_dict`` /
                       ``set_optimizer_state_dict(full_state_dict=True)`` keep each rank's shard. The positional
                       optimizer state is keyed by the names of this run's optimizer parameters first (Lightning keys
                       it by ``model.parameters()`` order, which is wrong once frozen parameters or two parameter
                       groups exist: the "Missing optimizer state for 'embed_tokens'" error).
folder -> 1 process /  the folder is consolidated in memory (DCP's no-process-group load of every shard) and its
DDP                    named optimizer state put back in positional form; Lightning then loads it as a file.
file -> 1 process/DDP  Lightning's own path.
=====================  ===========================================================================================

A parameter the optimizer has no state for yet (it never had a gradient) stays without state after loading, so its
first update is the one an uninterrupted run would make (torch initialises missing states with one zero-gradient
step, which would shift Adam's bias correction).

Before loading, the checkpoint's files and tensor names and shapes are checked against the run; what cannot work
(another model, another LoRA layout, other trained parameters, a missing shard file) raises
:class:`CheckpointError`, one line naming the checkpoint and the mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lit_videor2.errors import UserError

#: Lightning's file of everything but weights and optimizer state in a distributed checkpoint folder.
META_FILE = "meta.pt"
MODEL_KEY = "state_dict"
LAYOUT_HINT = (
    "resume with the model.init_args.policy (path, lora, freeze_*) of the run that wrote it, or start from its "
    "export (`lit_videor2 export`) as a new run"
)


class CheckpointError(UserError):
    """A checkpoint cannot be resumed by this run: missing files, or another model / LoRA / trained-parameter layout."""


# -- files -------------------------------------------------------------------------------------------------------


def is_distributed_checkpoint(path: str | Path) -> bool:
    """A ``torch.distributed.checkpoint`` folder (what FSDP2 runs write), as opposed to a ``.ckpt`` file."""
    path = Path(path)
    return path.is_dir() and (path / ".metadata").is_file()


def _dcp_metadata(path: Path) -> Any:
    from torch.distributed.checkpoint import FileSystemReader

    return FileSystemReader(path).read_metadata()


def check_checkpoint_files(path: str | Path) -> None:
    """Raise :class:`CheckpointError` when ``path`` is no checkpoint or a distributed one lacks a file."""
    path = Path(path)
    if path.is_file():
        return
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not (path / ".metadata").is_file():
        raise CheckpointError(
            f"checkpoint folder {path} has no .metadata: not a distributed checkpoint, or it was copied in part"
        )
    shard_files = sorted({info.relative_path for info in _dcp_metadata(path).storage_data.values()})
    missing = [f for f in shard_files if not (path / f).is_file()]
    if not (path / META_FILE).is_file():
        missing.append(META_FILE)
    if missing:
        raise CheckpointError(
            f"checkpoint folder {path} lacks {len(missing)} of its files ({', '.join(missing[:4])}): copy the whole "
            "folder (one shard file per rank that wrote it)"
        )


def saved_tensor_shapes(path: Path, checkpoint: Mapping[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
    """Name -> full shape of every model tensor of a checkpoint (its ``state_dict``), without loading a DCP folder."""
    if checkpoint is not None:
        return {k: tuple(v.shape) for k, v in checkpoint[MODEL_KEY].items() if isinstance(v, torch.Tensor)}
    prefix = MODEL_KEY + "."
    return {
        k[len(prefix) :]: tuple(v.size)
        for k, v in _dcp_metadata(path).state_dict_metadata.items()
        if k.startswith(prefix) and hasattr(v, "size")
    }


# -- layout checks (pure) ----------------------------------------------------------------------------------------


def layout_mismatch(saved: Mapping[str, tuple[int, ...]], current: Mapping[str, tuple[int, ...]]) -> str | None:
    """What differs between a checkpoint's tensors and the model's (name -> full shape), or None when they fit."""
    missing = [k for k in current if k not in saved]
    unexpected = [k for k in saved if k not in current]
    reshaped = [k for k in current if k in saved and tuple(saved[k]) != tuple(current[k])]
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's tensors are not in it (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} of its tensors are not in the model (e.g. {unexpected[0]})")
    if reshaped:
        k = reshaped[0]
        parts.append(f"{len(reshaped)} differ in shape (e.g. {k}: {list(saved[k])} saved, {list(current[k])} here)")
    return "; ".join(parts) or None


def optimizer_layout_mismatch(saved_groups: list[list[Any]], current_groups: list[list[str]]) -> str | None:
    """What differs between a saved optimizer's parameter groups and this run's, or None.

    ``saved_groups`` hold names (distributed checkpoints) or positions (files); names are compared, positions only
    counted. ``current_groups`` are this run's parameter names, group by group.
    """
    saved_sizes, sizes = [len(g) for g in saved_groups], [len(g) for g in current_groups]
    if saved_sizes != sizes:
        return (
            f"its optimizer trains {sum(saved_sizes)} parameters in groups of {saved_sizes}, this run "
            f"{sum(sizes)} in groups of {sizes} (other trained parameters: policy.freeze_* or lora)"
        )
    for saved, current in zip(saved_groups, current_groups):
        for a, b in zip(saved, current):
            if isinstance(a, str) and a != b:
                return f"its optimizer trains {a} where this run trains {b}"
    return None


# -- optimizer state keys (pure) ---------------------------------------------------------------------------------


def optimizer_param_names(module: nn.Module, optimizer: torch.optim.Optimizer) -> list[list[str]]:
    """Names (in ``module``) of the optimizer's parameters, group by group, in the optimizer's order."""
    names = {id(p): n for n, p in module.named_parameters()}
    return [[names[id(p)] for p in group["params"]] for group in optimizer.param_groups]


def positional_optimizer_state(named: Mapping[str, Any]) -> dict[str, Any]:
    """A name-keyed optimizer state dict (``get_optimizer_state_dict``) in ``Optimizer.state_dict``'s positional form."""
    index: dict[str, int] = {}
    groups = []
    for group in named["param_groups"]:
        ids = [index.setdefault(name, len(index)) for name in group["params"]]
        groups.append({**group, "params": ids})
    return {"state": {index[name]: s for name, s in named["state"].items()}, "param_groups": groups}


def named_optimizer_state(positional: Mapping[str, Any], names: list[list[str]]) -> dict[str, Any]:
    """A positional optimizer state dict keyed by parameter name instead (``names``: this run's, group by group)."""
    by_id = {
        i: n
        for group, group_names in zip(positional["param_groups"], names)
        for i, n in zip(group["params"], group_names)
    }
    groups = [{**g, "params": list(n)} for g, n in zip(positional["param_groups"], names)]
    return {"state": {by_id[i]: s for i, s in positional["state"].items()}, "param_groups": groups}


def forget_states(optimizer: torch.optim.Optimizer, names: list[list[str]], keep: Iterable[str]) -> None:
    """Drop the optimizer state of every parameter not in ``keep`` (it had none when the checkpoint was written)."""
    keep = set(keep)
    for group, group_names in zip(optimizer.param_groups, names):
        for p, name in zip(group["params"], group_names):
            if name not in keep:
                optimizer.state.pop(p, None)


# -- loading -----------------------------------------------------------------------------------------------------


def _hparams_hint(saved_hparams: Mapping[str, Any] | None, module: nn.Module) -> str:
    """``" (written with policy.lora=..., this run has ...)"`` for the policy fields that differ, else ``""``."""
    saved = (saved_hparams or {}).get("policy")
    current = getattr(module, "policy", None)
    if saved is None or current is None:
        return ""
    diffs = []
    for field in ("path", "lora", "freeze_vision", "freeze_llm", "freeze_embeddings", "freeze_lm_head"):
        a = saved.get(field) if isinstance(saved, Mapping) else getattr(saved, field, None)
        b = getattr(current, field, None)
        if a != b:
            diffs.append(f"policy.{field}={a!r} there, {b!r} here")
    return f" ({'; '.join(diffs)})" if diffs else ""


def check_model_layout(
    path: Path, module: nn.Module, checkpoint: Mapping[str, Any] | None, meta: Mapping | None
) -> None:
    """Raise :class:`CheckpointError` when the checkpoint's tensors do not fit ``module`` (names and full shapes)."""
    current = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    problem = layout_mismatch(saved_tensor_shapes(path, checkpoint), current)
    if problem:
        hint = _hparams_hint((meta or {}).get("hyper_parameters"), module)
        raise CheckpointError(
            f"checkpoint {path} was written for another model or LoRA layout{hint}: {problem}; {LAYOUT_HINT}"
        )


def check_optimizer_layout(path: Path | None, saved_groups: list[list[Any]], names: list[list[str]]) -> None:
    """Raise :class:`CheckpointError` when a saved optimizer's parameter groups (names or positions) do not fit
    this run's (``names``, group by group; :func:`optimizer_layout_mismatch`)."""
    problem = optimizer_layout_mismatch(saved_groups, names)
    if problem:
        raise CheckpointError(f"checkpoint {path} does not fit this run: {problem}; {LAYOUT_HINT}")


def _read_file(path: Path, weights_only: bool) -> dict[str, Any]:
    """A checkpoint file on the CPU, memory-mapped (its tensors are read when used)."""
    return torch.load(path, map_location="cpu", weights_only=weights_only, mmap=True)


def _read_meta(folder: Path, weights_only: bool) -> dict[str, Any]:
    """Lightning's ``meta.pt`` of a distributed checkpoint folder (everything but weights and optimizer states)."""
    return torch.load(folder / META_FILE, map_location="cpu", weights_only=weights_only)


def read_full_checkpoint(path: str | Path, *, weights_only: bool | None = None) -> dict[str, Any]:
    """A checkpoint as one in-memory dict of full tensors, in the layout a one-process run writes.

    A file is loaded as is (memory-mapped); a distributed folder is consolidated without a process group, and its
    ``optimizer_<i>`` entries become ``optimizer_states`` in positional form. The project's one reader of a whole
    checkpoint: resume on one process or DDP (:mod:`lit_videor2.modules.resume`) and ``lit_videor2 export`` use it.
    ``weights_only=False`` unpickles the hyper-parameters (they hold the policy spec dataclass): for trusted files.
    """
    path = Path(path)
    weights_only = bool(weights_only)  # Lightning's default for local files: False (hyper-parameters hold classes)
    if not is_distributed_checkpoint(path):
        return _read_file(path, weights_only)
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.format_utils import _EmptyStateDictLoadPlanner
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    checkpoint: dict[str, Any] = {}
    _load_state_dict(
        checkpoint, storage_reader=FileSystemReader(path), planner=_EmptyStateDictLoadPlanner(), no_dist=True
    )
    checkpoint.update(_read_meta(path, weights_only))
    keys = sorted((k for k in checkpoint if k.startswith("optimizer_") and k[10:].isdigit()), key=lambda k: int(k[10:]))
    checkpoint["optimizer_states"] = [positional_optimizer_state(checkpoint.pop(k)) for k in keys]
    return checkpoint


def load_sharded(
    path: Path, module: nn.Module, optimizers: list[torch.optim.Optimizer], *, weights_only: bool | None
) -> dict[str, Any]:
    """Load a checkpoint (file or folder) into an FSDP2-sharded ``module`` and its optimizers; return the rest.

    Every rank calls this (DCP loads collectively). What is returned holds everything but the model and optimizer
    states (Lightning's loops, schedulers, callbacks, data position, RNG, hyper-parameters).
    """
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    weights_only = bool(weights_only)
    if not is_distributed_checkpoint(path):
        checkpoint = _read_file(path, weights_only)
        check_model_layout(path, module, checkpoint, checkpoint)
        full = StateDictOptions(full_state_dict=True)
        set_model_state_dict(module, checkpoint.pop(MODEL_KEY), options=full)
        for optimizer, saved in zip(optimizers, checkpoint.pop("optimizer_states", [])):
            names = optimizer_param_names(module, optimizer)
            check_optimizer_layout(path, [g["params"] for g in saved["param_groups"]], names)
            named = named_optimizer_state(saved, names)
            set_optimizer_state_dict(
                module, optimizer, named, options=StateDictOptions(full_state_dict=True, strict=False)
            )
            forget_states(optimizer, names, keep=named["state"])
        return checkpoint

    import torch.distributed.checkpoint as dcp

    meta = _read_meta(path, weights_only)
    check_model_layout(path, module, None, meta)
    model_state = {MODEL_KEY: get_model_state_dict(module)}
    dcp.load(model_state, checkpoint_id=path)  # DCP reads the saved shards into this run's shards
    set_model_state_dict(module, model_state[MODEL_KEY])
    saved_keys = list(_dcp_metadata(path).state_dict_metadata)
    for i, optimizer in enumerate(optimizers):
        key = f"optimizer_{i}"
        names = optimizer_param_names(module, optimizer)
        prefix = f"{key}.state."
        with_state = {k[len(prefix) :].rsplit(".", 1)[0] for k in saved_keys if k.startswith(prefix)}
        n_groups = len({k.split(".")[2] for k in saved_keys if k.startswith(f"{key}.param_groups.")})
        if n_groups != len(names):
            raise CheckpointError(
                f"checkpoint {path} does not fit this run: its optimizer has {n_groups} parameter groups, this run "
                f"{len(names)}; {LAYOUT_HINT}"
            )
        template = get_optimizer_state_dict(module, optimizer)  # every parameter's state, initialised
        template["state"] = {n: s for n, s in template["state"].items() if n in with_state}
        dcp.load({key: template}, checkpoint_id=path)
        check_optimizer_layout(path, [list(g["params"]) for g in template["param_groups"]], names)
        set_optimizer_state_dict(module, optimizer, template, options=StateDictOptions(strict=False))
        forget_states(optimizer, names, keep=with_state)
    return meta
