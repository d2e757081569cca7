"""What a training run prints on its first screen: no warnings a user cannot act on, a progress bar that reads right.

:func:`quiet_unactionable_warnings` silences, by exact message, the warnings Lightning and torch raise about
things this project does on purpose (see each entry of :data:`UNACTIONABLE_WARNINGS`). Every other warning is
shown as before. :class:`StepProgressBar` is Lightning's rich progress bar without the ``Epoch 0/-2`` it shows
when a run is bounded by ``max_steps`` (Lightning then sets ``max_epochs`` to -1).
"""

from __future__ import annotations

import re
import warnings

from lightning.pytorch.callbacks import RichProgressBar

#: (message regex, why a user cannot act on it). Matched at the start of the warning's message.
UNACTIONABLE_WARNINGS: tuple[tuple[str, str], ...] = (
    (
        r"Found \d+ module\(s\) in eval mode at the start of training",
        "the frozen reference model and vision tower are kept in eval mode on purpose (no dropout)",
    ),
    (
        r"Using ModelCheckpoint with manual optimization and every_n_train_steps, but no pre-optimization state",
        "GRPO optimises manually; its checkpoints hold the state after the step, which is what resume needs",
    ),
    (
        re.escape("`isinstance(treespec, LeafSpec)` is deprecated"),
        "raised inside Lightning's own pytree helper with torch >= 2.10; nothing to change in user code",
    ),
)


def quiet_unactionable_warnings() -> None:
    """Ignore exactly the warnings of :data:`UNACTIONABLE_WARNINGS` (by message), in this process."""
    for pattern, _why in UNACTIONABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


class StepProgressBar(RichProgressBar):
    """Rich progress bar whose description is ``Epoch N`` when the run has no epoch bound (``max_epochs`` < 0).

    Lightning's own bar writes ``Epoch N/{max_epochs - 1}``, i.e. ``Epoch 0/-2`` for a ``max_steps`` run.
    """

    def _get_train_description(self, current_epoch: int) -> str:
        description = super()._get_train_description(current_epoch)
        max_epochs = self.trainer.max_epochs
        if max_epochs is not None and max_epochs < 0:
            description = description.replace(f"/{max_epochs - 1}", "", 1)
            width = len(self.validation_description)
            description = f"{description.rstrip():{width}}"
        return description
