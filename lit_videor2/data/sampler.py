"""A distributed sampler that resumes in the middle of an epoch, at the same or another number of ranks.

The data position of a run is a number of *samples*: how many positions of the epoch's order (the seeded
permutation, the same on every rank and at every world size) the ranks have consumed together. On ``W`` ranks
``DistributedSampler`` gives rank ``r`` the positions ``r, r + W, r + 2W, ...``, so after every rank took ``k``
batches of ``B`` the consumed positions are exactly the first ``k * B * W``: a prefix. A run resumed on ``M`` ranks
deals the rest of the order out to its ``M`` ranks the same way (:func:`resumed_order`), so no sample of the epoch is
trained twice or skipped. On the same world size this is exactly the uninterrupted run's order, padding included.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler


def resumed_order(order: list[int], start: int, num_replicas: int, drop_last: bool) -> list[int]:
    """The epoch's order after its first ``start`` positions, evened out for ``num_replicas`` ranks.

    As ``DistributedSampler`` evens out an epoch: cut to a multiple of ``num_replicas`` (``drop_last``), or padded
    with the epoch's first indices. Rank ``r`` takes ``resumed_order(...)[r::num_replicas]``. With ``start = 0`` (or
    a multiple of ``num_replicas`` on the world size that consumed it) the result is the uninterrupted run's order.
    """
    rest = list(order[start:])
    if drop_last:
        return rest[: len(rest) - len(rest) % num_replicas]
    pad = -len(rest) % num_replicas
    if pad and order:
        rest += (list(order) * math.ceil(pad / len(order)))[:pad]
    return rest


def loader_batches(samples_per_rank: int, batch_size: int, drop_last: bool) -> int:
    """Batches a DataLoader makes of ``samples_per_rank`` samples."""
    return samples_per_rank // batch_size if drop_last else math.ceil(samples_per_rank / batch_size)


def batches_done_equivalent(n: int, start: int, num_replicas: int, batch_size: int, drop_last: bool) -> int:
    """The batch index at which an epoch resumed after ``start`` positions stands on ``num_replicas`` ranks.

    The epoch's full batch count minus the batches left: Lightning then ends the epoch exactly when the resumed
    iteration runs out (on the same world size this is the number of batches each rank took).
    """
    full = len(resumed_order(range(n), 0, num_replicas, drop_last)) // num_replicas
    left = len(resumed_order(range(n), start, num_replicas, drop_last)) // num_replicas
    return loader_batches(full, batch_size, drop_last) - loader_batches(left, batch_size, drop_last)


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (seeded shuffle per epoch, rank slicing) that can resume one epoch after a prefix.

    Subclassing ``DistributedSampler`` makes Lightning keep it as it is instead of wrapping it, so the
    data order is the same in one process and on every rank of a DDP/FSDP run. ``resume(epoch, start)`` makes the
    next iteration of ``epoch`` deal out the positions after the first ``start`` of the epoch's order, which the
    ranks of the interrupted run (any number of them) consumed together (``len`` is unchanged).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self._resume_epoch: int | None = None
        self._resume_skip = 0

    def resume(self, epoch: int, start: int) -> None:
        """The next iteration of ``epoch`` starts at position ``start`` of its order (samples of all ranks)."""
        self._resume_epoch, self._resume_skip = epoch, start

    def epoch_order(self) -> list[int]:
        """This epoch's order of dataset indices before padding (``DistributedSampler``'s seeded permutation)."""
        if not self.shuffle:
            return list(range(len(self.dataset)))
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return torch.randperm(len(self.dataset), generator=g).tolist()

    def remaining(self) -> list[int]:
        """The epoch's positions this iteration deals out to the ranks (all of them after a resume's start)."""
        start = self._resume_skip if self._resume_epoch == self.epoch else 0
        return resumed_order(self.epoch_order(), start, self.num_replicas, self.drop_last)

    def __iter__(self) -> Iterator[int]:
        if self._resume_epoch != self.epoch or not self._resume_skip:
            return super().__iter__()
        indices = self.remaining()[self.rank :: self.num_replicas]
        self._resume_epoch = None  # only the first pass over the resumed epoch is shortened
        return iter(indices)

    def padding_indices(self) -> list[int]:
        """Dataset indices this rank receives only to even out the shards (``drop_last=False`` repeats the first
        indices of the epoch's order); empty when the dataset divides evenly. Evaluation writes them once, on the
        rank that holds their real occurrence."""
        if self.drop_last:
            return []
        order = list(super().__iter__())  # this rank's slice of the padded order, rank::num_replicas
        n = len(self.dataset)
        positions = range(self.rank, self.total_size, self.num_replicas)
        return [idx for pos, idx in zip(positions, order) if pos >= n]

    def __len__(self) -> int:
        # The full epoch length, also while resuming: Lightning reads the number of batches per epoch once, and
        # a shortened length would shorten every later epoch too. Like a stateful loader, the resumed epoch's
        # iteration just yields fewer batches; Lightning's restored batch progress counts from where it stopped.
        return self.num_samples
