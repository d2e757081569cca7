"""Checkpoints: written whole or not at all, resumed from what is whole, saved on preemption.

* :mod:`.complete`: which checkpoints are whole, the newest whole one (``--ckpt_path last``), and the one-line
  refusal of a partial one.
* :mod:`.atomic`: all-or-nothing writes of one-file and distributed (FSDP2) checkpoints.
* :mod:`.preemption`: SIGTERM / SLURM requeue signals: save at the next step boundary and stop cleanly.
"""
