"""A distributed sampler that can resume in the middle of an epoch (exact resume of training runs)."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (seeded shuffle per epoch, rank slicing) that can skip the first samples of one epoch.

    Subclassing ``DistributedSampler`` makes Lightning keep it as it is instead of wrapping it, so the
    data order is the same in one process and on every rank of a DDP/FSDP run. ``resume(epoch, n)`` makes the
    next iteration of ``epoch`` start after the ``n`` samples this rank already consumed (``len`` is unchanged).
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

    def resume(self, epoch: int, samples_done: int) -> None:
        self._resume_epoch, self._resume_skip = epoch, samples_done

    def _skip(self) -> int:
        return self._resume_skip if self._resume_epoch == self.epoch else 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        skip = self._skip()
        if skip:
            self._resume_epoch = None  # only the first pass over the resumed epoch is shortened
        return iter(indices[skip:])

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
