"""The model's anatomy and spec: :class:`~lit_videor2.models.policy.PolicySpec` (what to load, freeze, adapt),
where a Qwen-VL model's parts are (:func:`~lit_videor2.models.policy.inner_model`, ``vision_tower``,
``decoder_layers``), mRoPE positions (:mod:`~lit_videor2.models.rope`), vision helpers
(:mod:`~lit_videor2.models.vision`) and processor loading (:mod:`~lit_videor2.models.hub`).

Loading, sharding and activation checkpointing are :mod:`lit_videor2.distributed`; training checkpoints are
:mod:`lit_videor2.checkpoints`. This room imports neither (``docs/development.md#the-house``).
"""
