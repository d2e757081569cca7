"""Running a policy: loading it with its execution settings, FSDP2 sharding, gathering its weights for generation,
and activation checkpointing (per decoder layer, with the functional KV caches that keep prompt sharing on).

* :mod:`~lit_videor2.distributed.loading`: :func:`load_policy` (a ``PolicySpec`` -> a model);
* :mod:`~lit_videor2.distributed.sharding`: :func:`shard_policy`, :func:`gathered_for_generation`;
* :mod:`~lit_videor2.distributed.activation_checkpointing`: :func:`enable_activation_checkpointing`,
  :class:`FunctionalCache`.

The room sits above :mod:`lit_videor2.models` (the anatomy it shards and checkpoints) and below the stages.
"""
