"""FSDP2 execution of a policy: :func:`shard_policy` applies ``fully_shard`` per decoder layer, the vision tower,
then the root, on a device mesh, and :func:`gathered_for_generation` keeps a sharded policy's full weights for a whole
generation call (one all-gather per unit, not one per decode step; ``docs/performance.md#generation-under-fsdp2``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from lit_videor2.models.policy import decoder_layers, vision_tower


def shard_policy(
    model: nn.Module, device_mesh: Any, *, reshard_after_forward: bool = True, mp_dtype: torch.dtype | None = None
) -> nn.Module:
    """FSDP2: ``fully_shard`` each decoder layer, the vision tower, then the root, on the mesh's data-parallel dim."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = (
        device_mesh["data_parallel"]
        if device_mesh.mesh_dim_names and "data_parallel" in device_mesh.mesh_dim_names
        else device_mesh
    )
    kwargs: dict[str, Any] = {"mesh": mesh, "reshard_after_forward": reshard_after_forward}
    if mp_dtype is not None:
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=mp_dtype, reduce_dtype=torch.float32)
    for layer in decoder_layers(model):
        fully_shard(layer, **kwargs)
    fully_shard(vision_tower(model), **kwargs)
    fully_shard(model, **kwargs)
    return model


def fsdp_units(model: nn.Module) -> list[nn.Module]:
    """The FSDP2 units of ``model`` (modules ``fully_shard`` was applied to), in module order; [] when unsharded."""
    from torch.distributed.fsdp import FSDPModule

    return [m for m in model.modules() if isinstance(m, FSDPModule)]


def _reshard_settings(unit: nn.Module) -> tuple[bool | None, list[Any]]:
    """What decides whether ``unit`` reshards after a forward, to put back exactly: FSDP2 has a setter
    (``set_reshard_after_forward``) but no getter, and turns a root's off at its lazy init when ``fully_shard`` was
    not given the argument."""
    state = unit._get_fsdp_state()
    return state._auto_reshard_after_forward, [g.post_forward_mesh_info for g in state._fsdp_param_groups]


def _restore_reshard_settings(unit: nn.Module, saved: tuple[bool | None, list[Any]]) -> bool:
    """Put back :func:`_reshard_settings`; returns whether ``unit`` reshards after a forward."""
    state = unit._get_fsdp_state()
    state._auto_reshard_after_forward, infos = saved
    for group, info in zip(state._fsdp_param_groups, infos):
        group.post_forward_mesh_info = info
    return any(info is not None for info in infos)


@contextmanager
def gathered_for_generation(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Keep an FSDP2-sharded ``model``'s full weights from entry to exit (a whole decode loop).

    On entry every unit stops resharding after its forward and is unsharded: one all-gather per unit, in module
    order, the same collectives on every rank whatever its batch. The forwards inside then gather nothing,
    however many tokens are decoded. On exit each unit gets back its own setting, and the units that reshard
    after a forward free their full weights as their post-forward would have: under :func:`shard_policy` all of
    them, the root (embeddings, final norm, LM head) included, since ``reshard_after_forward=True`` is given
    explicitly (FSDP2 keeps a root unsharded after its forward only when the argument is left unset).
    Resharding is local, so ranks may leave at different times. A no-op when ``enabled`` is False or ``model``
    has no FSDP2 unit (one process, DDP).

    Memory: between entry and exit a rank holds every parameter unsharded in its compute dtype (FSDP2's
    ``param_dtype``, else the stored dtype) on top of its shards, plus the KV cache of the decode.

    FSDP2 picks its root at the first forward, and generation calls the vision tower before the root: the
    model, when sharded itself, is made the root here if no forward has run yet (what
    :meth:`~lit_videor2.modules.base.PolicyModule.init_fsdp_roots` does with a forward, needed with ``enabled``
    False).
    """
    units = fsdp_units(model) if enabled else []
    if units and units[0] is model:  # ``model`` is the root (not a part of a larger sharded model)
        model._get_fsdp_state()._lazy_init()  # no-op once the root is known
    saved = [_reshard_settings(u) for u in units]
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
    for unit in units:
        unit.unshard()
    try:
        yield
    finally:
        for unit, settings in zip(units, saved):
            if _restore_reshard_settings(unit, settings):
                unit.reshard()
