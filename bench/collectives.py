"""Count the all-gather collectives a process issues (FSDP2's weight gathers), for bench scripts and the tests (which
import it from here: ``bench/`` imports only the package, never ``tests/``)."""

from __future__ import annotations

from contextlib import contextmanager

import torch.distributed as dist

#: ``torch.distributed`` entry points an all-gather can go through (FSDP2 in torch 2.14 calls ``all_gather_single``).
ALL_GATHER_FUNCTIONS = ("all_gather_single", "all_gather_into_tensor", "_all_gather_base", "all_gather")


class GatherCount:
    """All-gathers issued (outermost calls only) and the bytes of their gathered outputs."""

    def __init__(self) -> None:
        self.calls, self.bytes = 0, 0


@contextmanager
def count_all_gathers():
    """Wrap ``torch.distributed``'s all-gather functions in this process; yields a :class:`GatherCount`."""
    count, depth, originals = (
        GatherCount(),
        [0],
        {n: getattr(dist, n) for n in ALL_GATHER_FUNCTIONS if hasattr(dist, n)},
    )

    def wrap(fn):
        def counted(output, *args, **kwargs):
            if depth[0] == 0:  # one entry point may call another: count the call the caller made
                count.calls += 1
                outs = output if isinstance(output, (list, tuple)) else [output]
                count.bytes += sum(t.numel() * t.element_size() for t in outs)
            depth[0] += 1
            try:
                return fn(output, *args, **kwargs)
            finally:
                depth[0] -= 1

        return counted

    for name, fn in originals.items():
        setattr(dist, name, wrap(fn))
    try:
        yield count
    finally:
        for name, fn in originals.items():
            setattr(dist, name, fn)
