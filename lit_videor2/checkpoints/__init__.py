"""Training checkpoints: written whole or not at all, read, checked and resharded, resumed from what is whole.

What a run writes is a Lightning ``.ckpt`` file or the ``torch.distributed.checkpoint`` folder an FSDP2 run writes.

* :mod:`.resharding`: the one reader of both (:func:`~lit_videor2.checkpoints.resharding.read_full_checkpoint`),
  used by ``export`` and by resume; layout checks and resharding on load.
* :mod:`.complete`: which checkpoints are whole, the newest whole one (``--ckpt_path last``), and the one-line
  refusal of a partial one.
* :mod:`.atomic`: all-or-nothing writes of one-file and distributed (FSDP2) checkpoints.
* :mod:`.preemption`: SIGTERM / SLURM requeue signals: save at the next step boundary and stop cleanly.

Activation checkpointing is not here: it is a part of distributed execution
(:mod:`lit_videor2.distributed.activation_checkpointing`).
"""
