"""Count the collectives a process issues (FSDP2's weight all-gathers and gradient reduce-scatters, all-reduces), with
their dtypes and bytes, for bench scripts and the tests (which import it from here: ``bench/`` imports only the
package, never ``tests/``).

The functions are wrapped where callers look them up: ``torch.distributed`` (and ``distributed_c10d``), which FSDP2,
Lightning and the project's lockstep decoding call, and ``torch.distributed._functional_collectives``, which DTensor
calls (e.g. the all-reduce of a sharded gradient norm). Only the outermost call is counted when one entry point calls
another.

Bytes are those of the full tensor a collective is about, the same on every rank: an all-gather's gathered output,
a reduce-scatter's unreduced input (the whole gradient buffer), an all-reduce's tensor. With ring algorithms a rank
sends and receives about (W - 1) / W of that over W ranks (twice that for an all-reduce).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

#: Entry points per kind: ``(module attribute name, index of the argument that holds the counted tensor(s))``; index
#: -1 counts the function's result. FSDP2 in torch 2.14 calls ``all_gather_single`` and ``reduce_scatter_single``.
DIST_FUNCTIONS: dict[str, tuple[tuple[str, int], ...]] = {
    "all_gather": (("all_gather_single", 0), ("all_gather_into_tensor", 0), ("_all_gather_base", 0), ("all_gather", 0)),
    "reduce_scatter": (
        ("reduce_scatter_single", 1),
        ("reduce_scatter_tensor", 1),
        ("_reduce_scatter_base", 1),
        ("reduce_scatter", 1),
    ),
    "all_reduce": (("all_reduce", 0), ("all_reduce_coalesced", 0)),
}
FUNCOL_FUNCTIONS: dict[str, tuple[tuple[str, int], ...]] = {
    "all_gather": (("all_gather_single", -1), ("all_gather_tensor", -1), ("all_gather_tensor_autograd", -1)),
    "reduce_scatter": (
        ("reduce_scatter_single", 0),
        ("reduce_scatter_tensor", 0),
        ("reduce_scatter_tensor_autograd", 0),
    ),
    "all_reduce": (("all_reduce", 0), ("all_reduce_coalesced", 0)),
}
#: Kept for callers of the all-gather counter alone.
ALL_GATHER_FUNCTIONS = tuple(name for name, _ in DIST_FUNCTIONS["all_gather"])


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for t in value if isinstance(t, torch.Tensor)]
    return []


@dataclass
class CollectiveCount:
    """Calls of one kind of collective (outermost calls only) and the bytes of their full tensors, also per dtype."""

    calls: int = 0
    bytes: int = 0
    by_dtype: dict[str, list[int]] = field(default_factory=dict)
    """dtype name (``"bfloat16"``) -> ``[calls, bytes]``."""

    def add(self, tensors: list[torch.Tensor]) -> None:
        self.calls += 1
        for dtype in {t.dtype for t in tensors} or {None}:
            size = sum(t.numel() * t.element_size() for t in tensors if t.dtype == dtype)
            entry = self.by_dtype.setdefault(str(dtype).removeprefix("torch."), [0, 0])
            entry[0] += 1
            entry[1] += size
            self.bytes += size

    @property
    def dtypes(self) -> set[str]:
        """The dtypes this kind of collective moved."""
        return set(self.by_dtype)

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "bytes": self.bytes, "by_dtype": {k: list(v) for k, v in self.by_dtype.items()}}


#: The all-gather count of :func:`count_all_gathers` (``calls``, ``bytes``).
GatherCount = CollectiveCount


@dataclass
class CollectiveCounts:
    """Every counted kind of collective of a block."""

    all_gather: CollectiveCount = field(default_factory=CollectiveCount)
    reduce_scatter: CollectiveCount = field(default_factory=CollectiveCount)
    all_reduce: CollectiveCount = field(default_factory=CollectiveCount)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {kind: getattr(self, kind).as_dict() for kind in DIST_FUNCTIONS}


@contextmanager
def count_collectives() -> Iterator[CollectiveCounts]:
    """Wrap ``torch.distributed``'s and the functional collectives' all-gathers, reduce-scatters and all-reduces in this
    process; yields a :class:`CollectiveCounts` that fills as the block runs."""
    counts, depth = CollectiveCounts(), [0]
    patched: list[tuple[Any, str, Callable]] = []

    def wrap(fn: Callable, kind: str, index: int) -> Callable:
        names = list(inspect.signature(fn).parameters)

        def counted(*args: Any, **kwargs: Any) -> Any:
            outermost = depth[0] == 0
            depth[0] += 1
            try:
                result = fn(*args, **kwargs)
            finally:
                depth[0] -= 1
            if outermost:
                if index < 0:
                    value = result
                else:
                    value = args[index] if index < len(args) else kwargs.get(names[index])
                getattr(counts, kind).add(_tensors(value))
            return result

        counted.__wrapped__ = fn  # type: ignore[attr-defined]
        return counted

    import torch.distributed._functional_collectives as funcol
    import torch.distributed.distributed_c10d as c10d

    targets = [(dist, DIST_FUNCTIONS), (c10d, DIST_FUNCTIONS), (funcol, FUNCOL_FUNCTIONS)]
    wrapped: dict[int, Callable] = {}  # one wrapper per function, so torch.distributed and c10d share it
    for module, table in targets:
        for kind, entries in table.items():
            for name, index in entries:
                fn = getattr(module, name, None)
                if fn is None:
                    continue
                if id(fn) not in wrapped:
                    wrapped[id(fn)] = wrap(fn, kind, index)
                patched.append((module, name, fn))
                setattr(module, name, wrapped[id(fn)])
    try:
        yield counts
    finally:
        for module, name, fn in reversed(patched):
            setattr(module, name, fn)


@contextmanager
def count_all_gathers() -> Iterator[CollectiveCount]:
    """The all-gathers of :func:`count_collectives` alone; yields a :class:`CollectiveCount` (``calls``, ``bytes``)."""
    with count_collectives() as counts:
        yield counts.all_gather
