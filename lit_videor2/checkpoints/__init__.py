"""Training checkpoints: how a run writes them (whole or not at all), which are whole, and how they are read back.

* :mod:`.resharding`: reading, checking and resharding what a run writes (a Lightning ``.ckpt`` file, or the
  ``torch.distributed.checkpoint`` folder an FSDP2 run writes), with one reader used by ``export`` and by resume
  (:func:`~lit_videor2.checkpoints.resharding.read_full_checkpoint`).
* :mod:`.atomic`: all-or-nothing writes of one-file and distributed checkpoints, on every rank.
* :mod:`.complete`: which checkpoints are whole, the newest whole one (``--ckpt_path last``), and the one-line
  refusal of a partial one.
* :mod:`.preemption`: SIGTERM / SLURM's requeue signal: save a whole checkpoint at the next step boundary, stop.

Activation checkpointing is not here: it is a part of distributed execution
(:mod:`lit_videor2.distributed.activation_checkpointing`).
"""
