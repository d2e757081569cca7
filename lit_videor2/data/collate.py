"""Samples -> model batches. One collator serves both stages.

Every batch carries the *prompt* (system + user turn with the video + generation prompt), left-padded for
generation, and ``columns`` with every annotation field for rewards and metrics. In ``mode='sft'`` it also
carries the full conversation (prompt + assistant target + ``<|im_end|>\\n``), right-padded, with
``labels`` set on the assistant tokens only (everything else ``-100``).

Vision inputs (``pixel_values_videos``, ``video_grid_thw``, ``second_per_grid_ts``) are shared by the
prompt and full sequences: the assistant target adds no vision tokens.

Each sample is run through the processor on its own (sizes and fps differ per video) and padded here.
The processor receives the frames' real presentation times as ``VideoMetadata`` (:func:`video_metadata`) so the
sampled fps, ``second_per_grid_ts`` and Qwen3-VL's per-frame timestamps are true. Prompts are never truncated: a
prompt over ``max_prompt_length`` raises (or is skipped and counted with ``on_error='skip'``); in SFT an
over-long assistant target is cut at the end and counted in ``num_truncated``.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any, Literal

import torch
from transformers.video_utils import VideoMetadata

from lit_videor2.data.dataset import SkippedSample, VideoSample, sample_columns, stack_columns
from lit_videor2.data.processor_cache import ProcessorCache, supports_cache
from lit_videor2.data.records import REASONING_INSTRUCTION, VideoRecord
from lit_videor2.data.schema import OnError, RecordError

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


def build_messages(record: VideoRecord, system_prompt: str | None, instruction: str | None) -> list[dict]:
    """Chat messages for the prompt of a record (no assistant turn)."""
    text = record.question if not instruction else f"{record.question}\n{instruction}"
    messages = []
    if system_prompt:
        messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    messages.append({"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]})
    return messages


#: Ticks per second of the clock the processor is told frame times on (see :func:`video_metadata`).
TIME_TICKS_PER_S = 1000


def video_metadata(times: list[float], duration: float, width: int, height: int, backend: str) -> VideoMetadata:
    """The ``VideoMetadata`` that hands the processor the frames' real times.

    The processors derive times from ``frames_indices / fps`` (Qwen3-VL's ``<t seconds>`` stamps) and the sampling
    rate from ``len(frames_indices) / total_num_frames · fps`` (Qwen2/2.5-VL's ``second_per_grid_ts`` =
    ``temporal_patch / sampled_fps``). Frames are taken by time, not at constant index steps, so the metadata
    describes a millisecond clock: ``fps`` = 1000, each frame's "index" its presentation time in milliseconds, the
    "frame count" the duration in milliseconds. Qwen3-VL then stamps each frame pair with its real times and
    Qwen2/2.5-VL get ``temporal_patch · duration / T`` seconds per temporal patch, the sampling interval.
    """
    ticks = TIME_TICKS_PER_S
    return VideoMetadata(
        total_num_frames=max(1, round(duration * ticks)),
        fps=float(ticks),
        width=width,
        height=height,
        duration=duration,
        frames_indices=[round(t * ticks) for t in times],
        video_backend=backend,
    )


def _bounds_whole_clip(processor: Any) -> bool:
    """Whether the video processor's ``size`` bounds the pixels of the whole clip (Qwen3-VL) or of one frame."""
    vp = getattr(processor, "video_processor", None)
    return any(c.__name__.startswith("Qwen3VLVideoProcessor") for c in type(vp).__mro__)


def pad_stack(seqs: list[torch.Tensor], value: int, side: Literal["left", "right"]) -> torch.Tensor:
    """Pad 1-D tensors to a common length on ``side`` and stack to ``[B, L]``."""
    length = max(s.numel() for s in seqs)
    out = torch.full((len(seqs), length), value, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        if side == "left":
            out[i, length - s.numel() :] = s
        else:
            out[i, : s.numel()] = s
    return out


class VideoCollator:
    """Collate :class:`VideoSample` s into prompt (and, for SFT, training) batches with a HF processor."""

    def __init__(
        self,
        processor: Any,
        mode: Literal["sft", "prompt"] = "sft",
        *,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        instruction: str | None = REASONING_INSTRUCTION,
        max_length: int = 16384,
        max_prompt_length: int = 16384,
        on_error: OnError = "raise",
        cache_dir: str | None = None,
    ) -> None:
        """
        Args:
            processor: The model's HF processor (tokenizer + video processor).
            mode: ``sft`` (prompt + target with labels) or ``prompt`` (prompt only).
            system_prompt: System message (None: none).
            instruction: Text appended to every question.
            max_length: SFT: longest prompt + target in tokens.
            max_prompt_length: Longest prompt in tokens, video included (never truncated).
            on_error: ``raise`` or ``skip`` (counted) on a bad record.
            cache_dir: Folder of the frame cache; when set, the processor's video outputs of frames that came
                with a frame cache key are cached under ``<cache_dir>/processor`` (:mod:`.processor_cache`).
        """
        if mode not in ("sft", "prompt"):
            raise ValueError(f"collator mode must be 'sft' or 'prompt', got {mode!r}")
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.mode = mode
        self.system_prompt = system_prompt
        self.instruction = instruction
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length
        self.on_error = on_error
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        )
        self.end_of_turn = "<|im_end|>\n"
        self.cache: ProcessorCache | None = None
        if cache_dir is not None:
            if supports_cache(processor):
                self.cache = ProcessorCache(cache_dir, processor)
            else:
                log.warning(
                    "%s has no _process_videos step: its video outputs are not cached (frames still are)",
                    type(processor).__name__,
                )

    def prompt_text(self, record: VideoRecord) -> str:
        return self.processor.apply_chat_template(
            build_messages(record, self.system_prompt, self.instruction), tokenize=False, add_generation_prompt=True
        )

    def _process(self, sample: VideoSample) -> dict[str, Any]:
        f = sample.frames
        _, _, h, w = f.frames.shape
        meta = video_metadata(f.times, f.duration, w, h, f.backend)
        # Frames are already sized by FrameLoader: pin the processor's pixel bounds to that size so it keeps it.
        # Qwen3-VL's video processor bounds the pixels of the whole clip (T*H*W), Qwen2/2.5-VL's one frame (H*W).
        pixels = h * w * (f.frames.shape[0] if _bounds_whole_clip(self.processor) else 1)
        # With the processor cache the vision step (rescale, normalise, patchify; placeholder text) of a video whose
        # frames came from the frame cache is read from disk; the text is still templated and tokenised here.
        cached = self.cache.cached_video_step(self.processor, f.cache_key) if self.cache else nullcontext()
        with cached:
            out = self.processor(
                text=[self.prompt_text(sample.record)],
                videos=[f.frames],
                video_metadata=[meta],
                videos_kwargs={
                    "do_sample_frames": False,
                    "size": {"shortest_edge": pixels, "longest_edge": pixels},
                    "cap_pixels_per_frame": False,
                },
                return_tensors="pt",
            )
        n_prompt = out["input_ids"].shape[1]
        if n_prompt > self.max_prompt_length:
            raise RecordError(
                f"record {sample.record.id!r} ({sample.record.source}): prompt has {n_prompt} tokens "
                f"(video included), over max_prompt_length={self.max_prompt_length}; prompts are never truncated "
                f"inside the video: lower FrameSampling.max_frames/max_pixels or raise the limit"
            )
        item = {k: out[k] for k in out}
        if self.mode == "sft":
            if n_prompt >= self.max_length:
                raise RecordError(
                    f"record {sample.record.id!r} ({sample.record.source}): prompt has {n_prompt} tokens, filling "
                    f"max_length={self.max_length}; no room for the target (raise max_length or lower the frame budget)"
                )
            if not sample.record.solution:
                raise RecordError(
                    f"record {sample.record.id!r} ({sample.record.source}): SFT needs a reasoning target (gpt turn / 'process')"
                )
            target = self.tokenizer(
                sample.record.solution + self.end_of_turn, add_special_tokens=False, return_tensors="pt"
            )
            item["target_ids"] = target["input_ids"][0]
        return item

    def _process_checked(self, sample: VideoSample) -> dict[str, Any]:
        """:meth:`_process`, with any failure (chat template, processor, tokenizer) made the record's error."""
        try:
            return self._process(sample)
        except RecordError:
            raise
        except Exception as e:  # noqa: BLE001 - one bad record must not take the batch down with on_error='skip'
            rec = sample.record
            raise RecordError(
                f"record {rec.id!r} ({rec.source}), video {rec.video!r}: the processor failed ({type(e).__name__}: {e})"
            ) from e

    def __call__(self, samples: list[VideoSample | SkippedSample]) -> dict[str, Any]:
        items, good = [], []
        skipped = [
            {"id": s.record_id, "benchmark": s.benchmark, "reason": s.reason}
            for s in samples
            if isinstance(s, SkippedSample)
        ]
        for s in samples:
            if isinstance(s, SkippedSample):
                continue
            try:
                items.append(self._process_checked(s))
                good.append(s)
            except RecordError as e:
                if self.on_error == "raise":
                    raise
                log.warning("skipping %s", e)
                bench = s.record.extra.get("benchmark")
                skipped.append({"id": s.record.id, "benchmark": bench, "reason": str(e)})
        # num_skipped counts them; skipped says which and why (evaluation writes it into the results tables).
        batch: dict[str, Any] = {"num_skipped": len(skipped), "skipped": skipped, "batch_size": len(items)}
        if not items:
            return batch
        prompt_ids = [it["input_ids"][0] for it in items]
        prompt_tt = [it["mm_token_type_ids"][0] for it in items] if "mm_token_type_ids" in items[0] else None
        batch["prompt_input_ids"] = pad_stack(prompt_ids, self.pad_id, "left")
        batch["prompt_attention_mask"] = pad_stack([torch.ones_like(p) for p in prompt_ids], 0, "left")
        if prompt_tt is not None:
            batch["prompt_mm_token_type_ids"] = pad_stack(prompt_tt, 0, "left")
        batch["pixel_values_videos"] = torch.cat([it["pixel_values_videos"] for it in items])
        batch["video_grid_thw"] = torch.cat([it["video_grid_thw"] for it in items])
        if "second_per_grid_ts" in items[0]:
            batch["second_per_grid_ts"] = torch.cat(
                [torch.as_tensor(it["second_per_grid_ts"], dtype=torch.float32).view(-1) for it in items]
            )
        batch["columns"] = stack_columns([sample_columns(s) for s in good])
        if self.mode == "sft":
            self._add_sft(batch, prompt_ids, prompt_tt, [it["target_ids"] for it in items])
        return batch

    def _add_sft(self, batch: dict, prompt_ids: list, prompt_tt: list | None, targets: list) -> None:
        full, labels, types, truncated = [], [], [], 0
        for i, (p, t) in enumerate(zip(prompt_ids, targets)):
            room = self.max_length - p.numel()  # > 0: checked per sample in _process (so on_error='skip' applies)
            if t.numel() > room:
                t, truncated = t[:room], truncated + 1
            full.append(torch.cat([p, t]))
            labels.append(torch.cat([torch.full_like(p, -100), t]))
            if prompt_tt is not None:
                types.append(torch.cat([prompt_tt[i], torch.zeros_like(t)]))
        batch["input_ids"] = pad_stack(full, self.pad_id, "right")
        batch["attention_mask"] = pad_stack([torch.ones_like(x) for x in full], 0, "right")
        batch["labels"] = pad_stack(labels, -100, "right")
        if types:
            batch["mm_token_type_ids"] = pad_stack(types, 0, "right")
        batch["prompt_lengths"] = torch.tensor([p.numel() for p in prompt_ids])
        batch["num_truncated"] = truncated
