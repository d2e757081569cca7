"""Training checkpoints: reading, checking and resharding what a run writes (a Lightning ``.ckpt`` file, or the
``torch.distributed.checkpoint`` folder an FSDP2 run writes), with one reader used by ``export`` and by resume
(:func:`~lit_videor2.checkpoints.resharding.read_full_checkpoint`).

Activation checkpointing is not here: it is a part of distributed execution
(:mod:`lit_videor2.distributed.activation_checkpointing`).
"""
