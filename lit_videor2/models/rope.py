"""3-D mRoPE positions of Qwen2-VL / Qwen2.5-VL sequences by the original Qwen rule, as one pure function.

Each real (unpadded) token gets a (time, height, width) position:

* **Text** tokens step by one on all three axes, starting at the row's next free position.
* A **vision block** (an image or a video of ``t x h x w`` patches, merged to ``t x h' x w'`` tokens with
  ``h' = h / m``, ``w' = w / m`` for the spatial merge size ``m``) starting at position ``s`` gets
  ``(s + time(i), s + y, s + x)`` for its token at temporal grid ``i``, row ``y``, column ``x``, where

  - Qwen2-VL: ``time(i) = i`` (one step per temporal grid);
  - Qwen2.5-VL video: ``time(i) = floor(i * second_per_grid_t * tokens_per_second)`` (absolute time: the
    config's ``tokens_per_second`` positions per second of video; ``second_per_grid_t`` from the processor,
    1.0 when absent);
  - Qwen2.5-VL image: ``time(i) = 0``.

* The text after a vision block continues at the block's **largest position + 1** on all three axes.

This is the rule of the released Qwen2-VL / Qwen2.5-VL code (and of transformers up to 4.51 / 5.2) that real
checkpoints were trained with. transformers 5.24's and 5.25's ``get_rope_index`` instead advances the text after a block by
``max(h', w')`` only, so the text after a long video shares time positions with the video; see
``docs/departures.md``. Qwen3-VL (a timestamp token per frame, every frame its own block) is not covered here:
its model's own ``get_rope_index`` is used (:func:`lit_videor2.models.vision.rope_positions`).

The time axis is computed as transformers 4.51.3 does: ``(i * second_per_grid_t) * tokens_per_second`` in float,
floored once (so 0.5 s per grid at 2 tokens per second steps by 1, 7.5 s by 15). Two conventions are transformers
5.x's rather than 4.51's, and neither changes a real token's position: padding gets position 0 (4.51: 1), and the
rope deltas count real tokens only (4.51 subtracted the padded length).
"""

from __future__ import annotations

import torch

#: ``mm_token_type_ids`` values (the processors' convention).
TEXT, IMAGE, VIDEO = 0, 1, 2


def _runs(types: torch.Tensor) -> list[tuple[int, int, int]]:
    """``[n]`` token types -> ``(type, start, end)`` of each maximal run of equal types."""
    if types.numel() == 0:
        return []
    cuts = (torch.nonzero(types[1:] != types[:-1]).flatten() + 1).tolist()
    bounds = [0, *cuts, types.numel()]
    values = types[bounds[:-1]].tolist() if len(bounds) > 1 else []
    return [(int(v), s, e) for v, s, e in zip(values, bounds[:-1], bounds[1:])]


def _time_steps(
    t: int, kind: int, *, second_per_grid_t: torch.Tensor | float, tokens_per_second: float | None, device: torch.device
) -> torch.Tensor:
    """``[t]`` time offsets of a block's temporal grids (module docstring), before the block's start is added."""
    steps = torch.arange(t, device=device)
    if tokens_per_second is None:  # Qwen2-VL: one step per temporal grid
        return steps
    if kind == IMAGE:  # Qwen2.5-VL images have no time axis
        return torch.zeros_like(steps)
    spg = torch.as_tensor(second_per_grid_t, device=device)
    return ((steps * spg) * tokens_per_second).long()  # the original order of operations, floored once


def _block_positions(grid: torch.Tensor, start: int, time: torch.Tensor, spatial_merge_size: int) -> torch.Tensor:
    """``(3, t * h' * w')`` positions of one vision block starting at ``start``, time offsets ``time`` ``[t]``."""
    t, h, w = (int(x) for x in grid.tolist())
    hm, wm = h // spatial_merge_size, w // spatial_merge_size
    t_idx = time.view(-1, 1, 1).expand(t, hm, wm)
    h_idx = torch.arange(hm, device=time.device).view(1, -1, 1).expand(t, hm, wm)
    w_idx = torch.arange(wm, device=time.device).view(1, 1, -1).expand(t, hm, wm)
    return torch.stack([t_idx, h_idx, w_idx]).reshape(3, -1) + start


def mrope_positions(
    mm_token_type_ids: torch.Tensor,
    *,
    spatial_merge_size: int,
    image_grid_thw: torch.Tensor | None = None,
    video_grid_thw: torch.Tensor | None = None,
    second_per_grid_ts: torch.Tensor | None = None,
    tokens_per_second: float | None = None,
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """3-D mRoPE positions by the original Qwen rule (module docstring).

    Args:
        mm_token_type_ids: ``[B, L]`` 0 text, 1 image, 2 video (the processor's output; see :func:`token_types`
            to derive it from token ids).
        spatial_merge_size: ``m`` of the vision config (2 for every Qwen-VL).
        image_grid_thw: ``[I, 3]`` patch grids of the images, in order of appearance over the rows.
        video_grid_thw: ``[V, 3]`` patch grids of the videos, in order of appearance over the rows.
        second_per_grid_ts: ``[V]`` seconds per temporal grid of each video (Qwen2.5-VL); None: 1.0 each.
        tokens_per_second: Qwen2.5-VL's ``vision_config.tokens_per_second`` (absolute time); None for Qwen2-VL
            (one time step per temporal grid; ``second_per_grid_ts`` is then ignored).
        attention_mask: ``[B, L]`` 1 on real tokens; padding (either side) gets position 0 and is skipped.

    Returns:
        ``position_ids`` ``(3, B, L)`` long (0 on padding) and ``rope_deltas`` ``[B, 1]``: the row's largest
        position + 1 minus its number of real tokens, so that a text token at real index ``k`` after the prompt
        sits at ``k + delta`` (transformers 5.x's convention).

    Raises:
        ValueError: a vision run whose length does not match the next grid(s), or grids left unused.
    """
    b, length = mm_token_type_ids.shape
    device = mm_token_type_ids.device
    mask = torch.ones_like(mm_token_type_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    blocks = _Blocks(image_grid_thw, video_grid_thw, second_per_grid_ts)
    positions = torch.zeros(3, b, length, dtype=torch.long, device=device)
    deltas = torch.zeros(b, 1, dtype=torch.long, device=device)
    for row in range(b):
        parts: list[torch.Tensor] = []  # (3, n) pieces of the row, in order
        nxt = 0  # the next free position
        for kind, s, e in _runs(mm_token_type_ids[row][mask[row]]):
            if kind == TEXT:
                parts.append(torch.arange(nxt, nxt + e - s, device=device).expand(3, -1))
                nxt += e - s
                continue
            remaining = e - s  # a run may hold several adjacent blocks
            while remaining > 0:
                grid, spg = blocks.next(kind, row, remaining, spatial_merge_size)
                time = _time_steps(
                    int(grid[0]), kind, second_per_grid_t=spg, tokens_per_second=tokens_per_second, device=device
                )
                parts.append(_block_positions(grid, nxt, time, spatial_merge_size))
                nxt = int(parts[-1].max()) + 1  # text resumes after the block's largest position
                remaining -= parts[-1].shape[1]
        if parts:
            row_pos = torch.cat(parts, dim=1)  # (3, n_real)
            positions[:, row, mask[row]] = row_pos
            deltas[row, 0] = int(row_pos.max()) + 1 - row_pos.shape[1]
    blocks.check_all_used()
    return positions, deltas


class _Blocks:
    """The grids of a batch's images and videos, handed out in order of appearance (checked against the tokens)."""

    def __init__(
        self,
        image_grid_thw: torch.Tensor | None,
        video_grid_thw: torch.Tensor | None,
        second_per_grid_ts: torch.Tensor | None,
    ) -> None:
        self.grids = {IMAGE: image_grid_thw, VIDEO: video_grid_thw}
        self.seconds = second_per_grid_ts
        self.used = {IMAGE: 0, VIDEO: 0}

    @staticmethod
    def _name(kind: int) -> str:
        return {IMAGE: "image_grid_thw", VIDEO: "video_grid_thw"}.get(kind, f"token type {kind}")

    def next(self, kind: int, row: int, remaining: int, merge: int) -> tuple[torch.Tensor, torch.Tensor | float]:
        """The next grid of ``kind`` and its seconds per temporal grid (1.0 for images or when none are given)."""
        grids = self.grids.get(kind)
        count = 0 if grids is None else grids.shape[0]
        if kind not in self.grids or self.used[kind] >= count:
            raise ValueError(
                f"mrope_positions: row {row} has more vision tokens of type {kind} than {self._name(kind)} "
                f"describes ({count} grids)."
            )
        i = self.used[kind]
        grid = grids[i]
        n = int(grid.prod()) // merge**2
        if n > remaining:
            raise ValueError(
                f"mrope_positions: row {row}: {self._name(kind)}[{i}] = {grid.tolist()} needs {n} tokens but the run "
                f"of vision tokens has {remaining} left (wrong grids, or a prompt cut inside its video)."
            )
        self.used[kind] += 1
        spg = 1.0 if self.seconds is None or kind == IMAGE else self.seconds[i]
        return grid, spg

    def check_all_used(self) -> None:
        for kind in (IMAGE, VIDEO):
            grids = self.grids[kind]
            total = 0 if grids is None else grids.shape[0]
            if self.used[kind] != total:
                raise ValueError(
                    f"mrope_positions: {self._name(kind)} has {total} grids but the token types hold "
                    f"{self.used[kind]} such blocks."
                )


def token_types(input_ids: torch.Tensor, *, image_token_id: int, video_token_id: int) -> torch.Tensor:
    """``[B, L]`` ``mm_token_type_ids`` from token ids: 1 on ``image_token_id``, 2 on ``video_token_id``, else 0."""
    types = torch.zeros_like(input_ids)
    types[input_ids == image_token_id] = IMAGE
    types[input_ids == video_token_id] = VIDEO
    return types
