"""Tiny, randomly initialised Qwen-VL checkpoints built offline, for tests and the CPU demo.

:func:`build_tiny_model` writes an ordinary Hugging Face folder — ``config.json``, ``model.safetensors``,
``generation_config.json``, ``tokenizer.json`` + ``tokenizer_config.json``, ``chat_template.jinja`` and the
processor config — holding a model of the *real* class (``Qwen2_5_VLForConditionalGeneration``,
``Qwen2VLForConditionalGeneration``, ``Qwen3VLForConditionalGeneration``) with the real processor classes.
``AutoProcessor.from_pretrained(DIR)``, ``<ModelClass>.from_pretrained(DIR)`` and
``AutoModelForImageTextToText.from_pretrained(DIR)`` load it exactly as they load a public checkpoint, so
the rest of the project never needs a special path for it.

What is the same as a public checkpoint
---------------------------------------
* Model, config, tokenizer and processor classes; the vision tower's patch, temporal patch and merge sizes;
  the image/video processor settings (normalisation, pixel bounds) of the public ``preprocessor_config.json``.
* The Qwen special tokens, in the public order (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``, …,
  ``<|vision_start|>``, ``<|vision_end|>``, ``<|vision_pad|>``, ``<|image_pad|>``, ``<|video_pad|>``, then the
  non-special ``<tool_call>`` … ``<|file_sep|>``, ``<tool_response>``, ``</tool_response>``, ``<think>``,
  ``</think>``), right after the BPE vocabulary. The config's ``image_token_id`` / ``video_token_id`` /
  ``vision_start_token_id`` / ``vision_end_token_id`` and the text config's ``bos``/``eos``/``pad`` ids point at
  them. ``eos_token = <|im_end|>``, ``pad_token = <|endoftext|>``, no BOS, as in the public tokenizers.
* The public chat templates (Qwen2-VL and Qwen2.5-VL share one, with the default system prompt
  "You are a helpful assistant."; Qwen3-VL's has no default system prompt).

What differs (on purpose)
-------------------------
* Sizes: text hidden 64, 2 layers, 4 heads / 2 KV heads (head_dim 16), a 1-2 layer vision tower of width 32.
  The mRoPE sections are the public ones scaled to head_dim 16 (sum = head_dim / 2).
* Vocabulary: a byte-level BPE (the Qwen2 pre-tokenizer regex, NFC, byte-level decoder — exactly what
  ``Qwen2Tokenizer`` rebuilds on load) trained with ``tokenizers`` on a built-in corpus of Video-R2 style
  text (:data:`~lit_videor2.data.records.REASONING_INSTRUCTION`, timestamped claims about coloured shapes,
  options A-E, generic English). So the token *ids* differ from the 151k Qwen vocabulary; code must read ids
  from the tokenizer/config, never hard-code 151655 and friends.
* ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` are single added tokens (non-special, like Qwen3's
  ``<think>``), so ``decode(..., skip_special_tokens=True)`` keeps them and the format reward sees them.
* ``generation_config.json`` carries only the bos/eos/pad ids (eos = [<|im_end|>, <|endoftext|>]); the public
  checkpoints' sampling defaults (e.g. Qwen2.5-VL's ``repetition_penalty=1.05, top_k=1``) are not copied:
  rollout code must pass its sampling settings explicitly anyway.

Per architecture
----------------
``qwen2_5_vl``
    Vision: window attention (``window_size=112``), full attention on the last block, SwiGLU MLP,
    ``tokens_per_second=2``; patch 14, merge 2, temporal patch 2. Text mRoPE sections ``[2, 3, 3]`` (public
    ``[16, 24, 24]``). The processor returns ``second_per_grid_ts = temporal_patch_size / sampled_fps``, where
    ``sampled_fps = len(frames_indices) / total_num_frames * fps`` of the :class:`VideoMetadata` — so ``fps``
    and ``total_num_frames`` describe the *source* video and ``frames_indices`` the sampled source frames.
``qwen2_vl``
    Vision: ``embed_dim`` / ``mlp_ratio`` naming, ``hidden_size`` = the LLM width, quick-GELU MLP; patch 14.
    No absolute time: the processor returns no ``second_per_grid_ts`` and the temporal mRoPE index steps by
    one per temporal patch whatever the fps.
``qwen3_vl``
    Vision: patch **16** (merged-patch factor 32), learned position embeddings (interpolated; 576 = 24², public
    2304 = 48²), DeepStack
    (``deepstack_visual_indexes=[0]`` feeds the first LLM layer); normalisation mean/std 0.5. Text has an
    explicit ``head_dim``, interleaved mRoPE (sections ``[4, 2, 2]``, public ``[24, 20, 20]``),
    ``rope_theta=5e6``. Time is given as text: the processor writes, per temporal patch (frame pair),
    ``<{t:.1f} seconds><|vision_start|>`` + ``<|video_pad|>`` × (tokens per frame) + ``<|vision_end|>``, with
    ``t`` = the mean of ``frames_indices[2k] / fps`` and ``frames_indices[2k+1] / fps``. In transformers 5.24 it
    replaces only the ``<|video_pad|>`` of the template's ``<|vision_start|><|video_pad|><|vision_end|>``, so the
    prompt holds an extra outer ``<|vision_start|>`` … ``<|vision_end|>`` pair around the per-frame blocks
    (older releases replaced the whole triple). No ``second_per_grid_ts``.

The processor call that works (all three archs, transformers 5.24)
------------------------------------------------------------------
::

    from transformers.video_utils import VideoMetadata

    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    pixels = H * W if arch != "qwen3_vl" else T * H * W   # see "size" below
    inputs = processor(
        text=[text],
        videos=[frames],                      # uint8 tensor (T, 3, H, W), frames already sampled
        video_metadata=[VideoMetadata(total_num_frames=n_src, fps=src_fps, frames_indices=indices)],
        do_sample_frames=False,               # keep exactly these frames
        size={"shortest_edge": pixels, "longest_edge": pixels},  # keep H x W (defaults upscale small frames)
        cap_pixels_per_frame=False,           # explicit: silences the 5.24 "cap will become default" warning
        return_tensors="pt",
    )
    # keys: input_ids, attention_mask, mm_token_type_ids, pixel_values_videos, video_grid_thw
    #       (+ second_per_grid_ts for qwen2_5_vl); pass them all to the model forward.

* The same keys may go inside ``videos_kwargs={...}`` instead (checked).
* ``VideoMetadata`` describes the *source* video: ``fps`` = its native fps, ``total_num_frames`` = its frame count,
  ``frames_indices`` = the source indices of the frames passed. Qwen2.5-VL derives
  ``second_per_grid_ts = temporal_patch_size / (len(frames_indices) / total_num_frames * fps)``, i.e. the
  *average* sampling rate over the whole source: sample uniformly over the whole video (or pass
  ``total_num_frames``/``fps`` of the span actually sampled), else the times are wrong without any error.
  Qwen3-VL writes ``frames_indices[i] / fps`` into the prompt.
* ``size``: for Qwen2/2.5-VL ``shortest_edge``/``longest_edge`` bound the pixels of *one frame*; for Qwen3-VL
  they bound the *whole clip* (``T*H*W``; passing ``H*W`` silently shrinks 64x64 frames to 32x32). ``H`` and
  ``W`` must be multiples of ``patch_size * merge_size`` (28 for qwen2/2.5, 32 for qwen3) to stay unchanged.
* The number of ``<|video_pad|>`` tokens equals ``video_grid_thw.prod() // merge_size**2``;
  ``mm_token_type_ids`` (0 text, 1 image, 2 video) comes from the processor and the model needs it.

Pitfalls found
--------------
* Qwen3-VL's saved video processor has ``do_sample_frames=True`` (as the public one): with frames already
  sampled and metadata describing the source, it re-samples indices out of range (``IndexError``). Always pass
  ``do_sample_frames=False``.
* Without ``video_metadata`` nothing fails: Qwen2.5-VL assumes 24 fps (``second_per_grid_ts = 0.083``),
  Qwen3-VL writes timestamps for 24 fps (a warning only).
* Qwen3-VL timestamps use ``f"{t:.1f}"``: 0.25 s prints as ``<0.2 seconds>``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from lit_videor2.data.records import REASONING_INSTRUCTION

log = logging.getLogger(__name__)

Arch = Literal["qwen2_5_vl", "qwen2_vl", "qwen3_vl"]
ARCHS: tuple[str, ...] = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl")

# ----------------------------------------------------------------------------------------------------------------
# Sizes
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class TinySizes:
    """Sizes of a tiny model. Defaults give roughly 0.3-0.4 M parameters."""

    hidden_size: int = 64
    """Width of the language model."""
    layers: int = 2
    """Number of language-model decoder layers."""
    intermediate_size: int | None = None
    """MLP width of the language model; None means ``2 * hidden_size``."""
    num_heads: int = 4
    """Attention heads of the language model (head_dim = hidden_size / num_heads)."""
    num_kv_heads: int = 2
    """Key/value heads of the language model (grouped-query attention, as in the public models)."""
    vision_hidden_size: int = 32
    """Width of the vision tower."""
    vision_depth: int = 2
    """Number of vision-tower blocks."""
    vision_heads: int = 2
    """Attention heads of the vision tower."""
    vision_intermediate_size: int = 64
    """MLP width of the vision tower (Qwen2-VL uses ``mlp_ratio = this / vision_hidden_size``)."""
    vocab_size: int = 1024
    """Upper bound on the trained BPE vocabulary (bytes + merges) before the 28 added Qwen/tag tokens; the
    built-in corpus yields ~765 (merges need a pair seen twice). The model's vocabulary is padded to 64."""

    def __post_init__(self) -> None:
        if self.intermediate_size is None:
            self.intermediate_size = 2 * self.hidden_size
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads} "
                "with an even head_dim (mRoPE splits head_dim / 2 frequencies into sections)."
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}.")
        if self.vision_hidden_size % self.vision_heads:
            raise ValueError(
                f"vision_hidden_size={self.vision_hidden_size} must be divisible by vision_heads={self.vision_heads}."
            )
        if self.layers < 1 or self.vision_depth < 1:
            raise ValueError(f"layers={self.layers} and vision_depth={self.vision_depth} must be >= 1.")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


def default_tiny_kwargs() -> dict[str, int | None]:
    """The default sizes as a plain dict (keyword arguments of :func:`build_tiny_model`)."""
    return asdict(TinySizes())


# ----------------------------------------------------------------------------------------------------------------
# Special tokens and chat templates (as in the public Qwen checkpoints)
# ----------------------------------------------------------------------------------------------------------------

#: Special tokens of the public Qwen2/2.5/3-VL tokenizers, in id order (151643 … 151656 there).
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
#: Non-special added tokens that follow them (151657 … 151668 in Qwen3-VL), then the project's answer tags.
QWEN_ADDED_TOKENS: tuple[str, ...] = (
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
)

#: Chat template of Qwen2-VL-*-Instruct and Qwen2.5-VL-*-Instruct (``chat_template.json`` of the public repos).
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_QWEN3_VISION_ITEMS = """\
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
"""

#: Chat template of Qwen3-VL-*-Instruct (no default system prompt; tools supported).
QWEN3_VL_CHAT_TEMPLATE = (
    """\
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' }}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- for message in messages %}
    {%- if message.role == "user" %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
"""
    + _QWEN3_VISION_ITEMS
    + """\
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content_item in message.content %}
                {%- if 'text' in content_item %}
                    {{- content_item.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and message.content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
"""
    + _QWEN3_VISION_ITEMS
    + """\
        {%- endif %}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
)

# ----------------------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------------------

#: The Qwen2 pre-tokenizer regex (transformers ``Qwen2Tokenizer`` rebuilds exactly this on load).
_QWEN2_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white")
_SHAPES = ("circle", "square", "triangle")
_GENERIC_ENGLISH = """\
You are a helpful assistant. The user asks a question about a video and the assistant answers it.
Watch the video carefully and answer the question. Select the best answer to the following multiple-choice
question based on the video. Respond with only the letter of the correct option. What happens in the video?
What is the colour of the shape? Which object appears first? Which object appears last? When does it happen?
How many shapes appear in the video? How many times does it move? What happens at this time? Where is it?
The video shows a scene with several objects. An object enters from the left side and leaves on the right side.
It is small and it is large. There is one, there are two, there are three, four, five, six, seven, eight, nine, ten.
In the beginning, in the middle and at the end of the clip. The person looks at the screen and points to it.
Let me think step by step. First, I look at each frame. Then I compare the frames. Finally, I choose the option.
I can see that the answer is correct because the evidence in the frames supports it. This is not correct.
Because of this, the answer must be the option that matches what I saw. Hmm, wait, let me check again. Yes.
Question: Options: Answer: Reasoning: the top, the bottom, the left, the right, the centre of the frame.
Seconds, second, minutes, time, start, end, during, until, while, again, stays, remains, changes, colour, color.
"""


def _tokenizer_corpus() -> list[str]:
    """A deterministic corpus of Video-R2 style text: instruction, timestamped claims, questions and options."""
    lines = [REASONING_INSTRUCTION, _GENERIC_ENGLISH]
    verbs = ("appears", "disappears", "moves right", "moves left", "moves up", "moves down", "stops")
    i = 0
    for colour in _COLOURS:
        for shape in _SHAPES:
            for verb in verbs:
                t1, t2 = i % 10, (i * 7 + 3) % 60
                letter = "ABCDE"[i % 5]
                lines.append(
                    f"At 00:{t1:02d} a {colour} {shape} {verb} on the left. At 00:{t2:02d} it moves right. "
                    f"Then the {colour} {shape} disappears at {t2 + 1} seconds. The answer is {letter}."
                )
                lines.append(
                    f"<think>At 00:{t1:02d} a {colour} {shape} appears. The {colour} option is {letter}. "
                    f"So the answer is {letter}.</think><answer>{letter}</answer>"
                )
                i += 1
    for a in _COLOURS:
        for b in _SHAPES:
            lines.append(
                f"Which shape appears first, the {a} {b} or the {_COLOURS[(len(a)) % 7]} one? "
                f"When does the {a} {b} appear? How many {b}s appear before the {a} one? "
                f"Count the shapes after 00:0{len(b)} and before 00:{len(a) + 10}."
            )
    options = " ".join(f"{L}. {c}" for L, c in zip("ABCDE", _COLOURS))
    lines.append(f"Options: {options}. Please answer with the option letter A, B, C, D or E.")
    lines.append(" ".join(str(n) for n in range(0, 130)))
    lines.append(" ".join(f"{m:02d}:{s:02d}" for m in range(3) for s in range(0, 60, 7)))
    lines.append("0.5 1.0 1.5 2.0 2.5 3.0 3.5 seconds; 00:00:05 00:01:30 - to 12.5 s")
    return lines


def build_tiny_tokenizer(vocab_size: int = 1024, *, model_max_length: int = 32768):
    """Train the byte-level BPE on the built-in corpus and wrap it as the public checkpoints' ``Qwen2Tokenizer``.

    Deterministic: the corpus is fixed and ``tokenizers``' BPE trainer breaks ties deterministically.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    # The corpus is repeated so that template phrases outrank one-off words.
    bpe.train_from_iterator(_tokenizer_corpus() * 4, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]

    tok = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token=None,
        pad_token=None,
        model_max_length=model_max_length,
        errors="replace",
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    # Add the specials one by one in the public order so that their ids are consecutive after the BPE vocab.
    tok.add_special_tokens({"pad_token": QWEN_SPECIAL_TOKENS[0]})
    tok.add_special_tokens({"extra_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    tok.eos_token = "<|im_end|>"
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN_ADDED_TOKENS])
    base = len(model["vocab"])
    for offset, token in enumerate(QWEN_SPECIAL_TOKENS + QWEN_ADDED_TOKENS):
        got = tok.convert_tokens_to_ids(token)
        if got != base + offset:  # pragma: no cover - guards a transformers behaviour change
            raise RuntimeError(f"token {token!r} got id {got}, expected {base + offset}: special-token order changed")
    return tok


# ----------------------------------------------------------------------------------------------------------------
# Config, processor, model
# ----------------------------------------------------------------------------------------------------------------


def _mrope_section(head_dim: int, arch: str) -> list[int]:
    """The public mRoPE sections scaled to ``head_dim`` (they sum to head_dim / 2)."""
    half = head_dim // 2
    if arch == "qwen3_vl":  # public [24, 20, 20] of 64, interleaved
        h = max(1, half * 20 // 64)
        return [half - 2 * h, h, h]
    t = max(1, half // 4)  # public [16, 24, 24] of 64
    h = (half - t) // 2
    return [t, h, half - t - h]


def _token_ids(tok) -> dict[str, int]:
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>")}
    return {
        "image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>"),
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def _make_config(arch: str, s: TinySizes, ids: dict[str, int], vocab_size: int):
    text = {
        "vocab_size": vocab_size,
        "hidden_size": s.hidden_size,
        "intermediate_size": s.intermediate_size,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.num_heads,
        "num_key_value_heads": s.num_kv_heads,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 32768,
        "bos_token_id": ids["bos_token_id"],
        "eos_token_id": ids["eos_token_id"],
        "pad_token_id": ids["pad_token_id"],
        "tie_word_embeddings": False,
    }
    top = {k: ids[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")}
    top["tie_word_embeddings"] = False
    rope = {"rope_type": "default", "mrope_section": _mrope_section(s.head_dim, arch)}
    if arch == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        text.update(
            rope_parameters={**rope, "rope_theta": 1e6},
            use_sliding_window=False,
            sliding_window=32768,
            max_window_layers=s.layers,
        )
        vision = {
            "depth": s.vision_depth,
            "hidden_size": s.vision_hidden_size,
            "intermediate_size": s.vision_intermediate_size,
            "num_heads": s.vision_heads,
            "hidden_act": "silu",
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
            "window_size": 112,
            "fullatt_block_indexes": [s.vision_depth - 1],
            "out_hidden_size": s.hidden_size,
        }
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **top)
    if arch == "qwen2_vl":
        from transformers import Qwen2VLConfig

        text.update(
            rope_parameters={**rope, "rope_theta": 1e6},
            use_sliding_window=False,
            sliding_window=32768,
            max_window_layers=s.layers,
        )
        vision = {
            "depth": s.vision_depth,
            "embed_dim": s.vision_hidden_size,
            "hidden_size": s.hidden_size,
            "mlp_ratio": max(1, s.vision_intermediate_size // s.vision_hidden_size),
            "num_heads": s.vision_heads,
            "hidden_act": "quick_gelu",
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        }
        return Qwen2VLConfig(text_config=text, vision_config=vision, **top)
    if arch == "qwen3_vl":
        from transformers import Qwen3VLConfig

        text.update(
            head_dim=s.head_dim,
            rope_parameters={**rope, "mrope_interleaved": True, "rope_theta": 5e6},
        )
        vision = {
            "depth": s.vision_depth,
            "hidden_size": s.vision_hidden_size,
            "intermediate_size": s.vision_intermediate_size,
            "num_heads": s.vision_heads,
            "hidden_act": "gelu_pytorch_tanh",
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": s.hidden_size,
            "num_position_embeddings": 576,
            "deepstack_visual_indexes": [0],
        }
        return Qwen3VLConfig(text_config=text, vision_config=vision, **top)
    raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")


def _make_processor(arch: str, tok):
    """The public processor classes with the settings of the public ``preprocessor_config.json`` files."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    if arch in ("qwen2_5_vl", "qwen2_vl"):
        from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor

        image = Qwen2VLImageProcessor(
            size={"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 16384}, patch_size=14, temporal_patch_size=2
        )
        video = Qwen2VLVideoProcessor(patch_size=14, temporal_patch_size=2, merge_size=2)
        cls = Qwen2_5_VLProcessor if arch == "qwen2_5_vl" else Qwen2VLProcessor
        return cls(image_processor=image, tokenizer=tok, video_processor=video, chat_template=QWEN2_VL_CHAT_TEMPLATE)
    from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

    half = [0.5, 0.5, 0.5]
    image = Qwen2VLImageProcessor(
        size={"shortest_edge": 65536, "longest_edge": 16777216},
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=half,
        image_std=half,
    )
    video = Qwen3VLVideoProcessor(
        size={"shortest_edge": 4096, "longest_edge": 25165824},
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=half,
        image_std=half,
    )
    return Qwen3VLProcessor(
        image_processor=image, tokenizer=tok, video_processor=video, chat_template=QWEN3_VL_CHAT_TEMPLATE
    )


_MODEL_CLASSES = {
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
}
_MODEL_MAX_LENGTH = {"qwen2_5_vl": 131072, "qwen2_vl": 32768, "qwen3_vl": 262144}


def model_class(arch: Arch):
    """The transformers model class of ``arch``."""
    import transformers

    if arch not in _MODEL_CLASSES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    return getattr(transformers, _MODEL_CLASSES[arch])


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Parameter counts: total, vision tower (incl. merger), language model (incl. embeddings and head)."""
    total = sum(p.numel() for p in model.parameters())
    vision = sum(p.numel() for p in model.model.visual.parameters())
    return {"total": total, "vision": vision, "language": total - vision}


def build_tiny_model(
    arch: Arch,
    out: str | Path,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    layers: int = 2,
    intermediate_size: int | None = None,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    vision_hidden_size: int = 32,
    vision_depth: int = 2,
    vision_heads: int = 2,
    vision_intermediate_size: int = 64,
    vocab_size: int = 1024,
) -> Path:
    """Write a tiny, randomly initialised (seeded) Hugging Face checkpoint of ``arch`` to ``out``; return ``out``.

    Args:
        arch: ``qwen2_5_vl``, ``qwen2_vl`` or ``qwen3_vl``.
        out: output folder (created; existing files with the same names are overwritten).
        seed: seed of the weight initialisation; the same seed gives bitwise identical weights.
        hidden_size, layers, ...: see :class:`TinySizes`.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    sizes = TinySizes(
        hidden_size=hidden_size,
        layers=layers,
        intermediate_size=intermediate_size,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        vision_hidden_size=vision_hidden_size,
        vision_depth=vision_depth,
        vision_heads=vision_heads,
        vision_intermediate_size=vision_intermediate_size,
        vocab_size=vocab_size,
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    tok = build_tiny_tokenizer(sizes.vocab_size, model_max_length=_MODEL_MAX_LENGTH[arch])
    ids = _token_ids(tok)
    padded_vocab = int(math.ceil(len(tok) / 64) * 64)  # the public vocabularies are padded too (151936 > 151665)
    config = _make_config(arch, sizes, ids, padded_vocab)

    from transformers import GenerationConfig

    # Weight init is a function of the seed only: fork the RNG so the caller's global state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(arch)(config)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos_token_id"],
        eos_token_id=[ids["eos_token_id"], ids["pad_token_id"]],
        pad_token_id=ids["pad_token_id"],
    )
    model.save_pretrained(out)
    _make_processor(arch, tok).save_pretrained(out)

    counts = count_parameters(model)
    (out / "tiny_model.json").write_text(
        json.dumps({"arch": arch, "seed": seed, "sizes": asdict(sizes), "parameters": counts}, indent=2) + "\n"
    )
    log.info("tiny %s model written to %s: %s parameters (vision %s)", arch, out, counts["total"], counts["vision"])
    return out


def tiny_model_main(argv: list[str] | None = None) -> Path:
    """``lit_videor2 tiny-model --arch ARCH --out DIR [--seed S --hidden-size H --layers L]``."""
    import argparse

    p = argparse.ArgumentParser(prog="lit_videor2 tiny-model", description=build_tiny_model.__doc__.split("\n")[0])
    p.add_argument("--arch", required=True, choices=ARCHS)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    a = p.parse_args(argv)
    path = build_tiny_model(a.arch, a.out, seed=a.seed, hidden_size=a.hidden_size, layers=a.layers)
    counts = json.loads((path / "tiny_model.json").read_text())["parameters"]
    print(f"wrote tiny {a.arch} to {path} ({counts['total']:,} parameters, vision {counts['vision']:,})")
    return path


__all__ = [
    "ARCHS",
    "QWEN2_VL_CHAT_TEMPLATE",
    "QWEN3_VL_CHAT_TEMPLATE",
    "TinySizes",
    "build_tiny_model",
    "build_tiny_tokenizer",
    "count_parameters",
    "default_tiny_kwargs",
    "model_class",
    "tiny_model_main",
]
