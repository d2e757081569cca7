"""GRPO rollouts with group sharing: G completions per video prompt, and their teacher-forced log-probs.

Design (B prompts, G completions each, N = B·G rows with the rows of one prompt adjacent)
----------------------------------------------------------------------------------------
Generation (:func:`generate_group`, ``share_prefix=True``):

1. The video of each prompt is encoded **once** (``model.model.get_video_features``), not G times.
2. The 3-D mRoPE positions of each prompt are computed **once** (``get_rope_index`` with ``second_per_grid_ts``
   and the attention mask); completion positions continue them by one per token on all three axes.
3. The prompt is prefilled **once per prompt** (B rows, not N), then the KV cache is expanded in place to N rows
   (``Cache.batch_repeat_interleave(G)``), and the last-prompt-token logits are repeated G times.
4. A small decode loop samples G completions on the shared cache with explicit position ids, using transformers'
   own logits processors (temperature, top-k, top-p, suppression of every vision special token, min new tokens).

The :class:`Rollout` keeps the per-prompt inputs, the (no-grad) visual features and the positions, so that the
log-prob passes (:func:`sequence_logprobs`) use exactly the same frame times and position ids as generation:

* ``reuse_vision=True``: the stored features go back in through ``mm_encoder_outputs``; the vision tower does not
  run again. Only valid while the vision tower is frozen (checked).
* ``share_prompt=True``: the prompt forward runs once per prompt *with* gradient, its KV cache is expanded to N
  rows and the completions are run on top of it. Backward flows through the expanded cache into the single prompt
  pass, so the LLM gradients equal those of N full forwards (within float rounding).

``share_prefix=False`` / ``share_prompt=False`` / ``reuse_vision=False`` give the baseline other frameworks use
(each prompt row repeated G times with its own copy of the pixels, plain ``model.generate``, full forwards).

Where this departs from TRL / Video-R1
--------------------------------------
* TRL's ``GRPOTrainer`` (and Video-R1's trainer, built on it) repeat every prompt G times with its pixels
  (``RepeatSampler``): the vision tower and the prompt prefill run G times per prompt in generation and again in
  every log-prob pass. Here they run once per prompt (measured: ``docs/performance.md#grpo-step-group-sharing``).
  TRL 1.16 also drops the video from its loss forward (``docs/method.md#departures-from-the-reference-code``);
  here every pass sees the video.
* Generation uses its own decode loop rather than ``model.generate``: positions are explicit (no reliance on the
  model's hidden ``rope_deltas`` state, which silently gives positions off by the video span when stale), no
  checkpoint ``generation_config`` defaults (e.g. Qwen2.5-VL's ``repetition_penalty=1.05, top_k=1``) leak in,
  and the whole prompt is prefilled (the first completion token comes from its last logits) instead of "prompt
  minus one token + ``generate`` on top". Greedy output equals ``model.generate`` (tested).
* Vision special tokens (``<|vision_start|>``, ``<|vision_end|>``, ``<|vision_pad|>``, ``<|image_pad|>``,
  ``<|video_pad|>``) are suppressed by default: a generated ``<|video_pad|>`` breaks the log-prob forward.
* After EOS a row is filled with the pad token; those tokens keep attention mask 1 in every pass (they can only
  influence later, masked positions) and get completion mask 0.

Assumptions: one video per prompt (as :class:`~lit_videor2.data.collate.VideoCollator` produces); Qwen2-VL, Qwen3-VL /
Qwen2.5-VL style models (``model.model.get_video_features`` / ``get_rope_index``).
"""

from lit_videor2.rollout.containers import PromptBatch, Rollout
from lit_videor2.rollout.decoding import (
    STOP_TOKENS,
    build_logits_processors,
    completion_mask_from_eos,
    decode_loop,
    special_token_kwargs,
    stop_token_ids,
)
from lit_videor2.rollout.engine import Completions, GenerationSettings, decode_completions, generate_completions
from lit_videor2.rollout.generation import generate_group
from lit_videor2.rollout.logprobs import sequence_logprobs

__all__ = [
    "STOP_TOKENS",
    "Completions",
    "GenerationSettings",
    "PromptBatch",
    "Rollout",
    "build_logits_processors",
    "completion_mask_from_eos",
    "decode_completions",
    "decode_loop",
    "generate_completions",
    "generate_group",
    "sequence_logprobs",
    "special_token_kwargs",
    "stop_token_ids",
]
