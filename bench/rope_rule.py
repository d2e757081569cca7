"""Does the installed transformers' ``get_rope_index`` follow the original Qwen mRoPE rule? One row per architecture.

The table of ``docs/departures.md`` comes from this script. For each of Qwen2-VL, Qwen2.5-VL and Qwen3-VL it builds
the tiny model (:func:`lit_videor2.demo.tiny.build_tiny_model`, random weights; positions depend only on the config)
and one sequence: three text tokens, a video of 16 x 12 x 16 patches (16 temporal grids of 6 x 8 merged tokens),
two text tokens. It compares the positions of the model's own ``model.model.get_rope_index`` with the original rule:

* Qwen2-VL / Qwen2.5-VL: :func:`lit_videor2.models.rope.mrope_positions` (the released Qwen code, transformers
  4.51; pinned against a transcription of 4.51.3 in ``tests/test_rope.py``). Qwen2.5-VL is measured at 1 s and
  7.5 s per temporal grid.
* Qwen3-VL: the released Qwen3-VL code writes a ``<t seconds>`` text stamp before every frame pair and places each
  pair as its own block of temporal size 1 (time offset 0); the text after a block continues at the block's largest
  position + 1. That is :func:`mrope_positions` on the per-frame-pair grids with the stamps as text tokens.

Usage: ``python bench/rope_rule.py`` (a few seconds on a CPU). Prints a markdown table and the versions.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

from lit_videor2.demo.tiny import build_tiny_model  # noqa: E402
from lit_videor2.models.rope import TEXT, VIDEO, mrope_positions  # noqa: E402

GRID = (16, 12, 16)  # temporal grids x patch rows x patch columns
STAMP_TOKENS = 4  # text tokens of one "<t seconds><|vision_start|>" ... "<|vision_end|>" around a Qwen3-VL frame pair


def sequence(arch: str, merge: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``mm_token_type_ids`` ``[1, L]`` of the test sequence, the grids of the original rule, and the model's grid."""
    t, h, w = GRID
    per_grid = (h // merge) * (w // merge)
    if arch == "qwen3_vl":
        types = [TEXT] * 3
        for _ in range(t):
            types += [TEXT] * STAMP_TOKENS + [VIDEO] * per_grid + [TEXT]
        types += [TEXT] * 2
        original_grids = torch.tensor([[1, h, w]] * t)
    else:
        types = [TEXT] * 3 + [VIDEO] * (t * per_grid) + [TEXT] * 2
        original_grids = torch.tensor([list(GRID)])
    return torch.tensor([types]), original_grids, torch.tensor([list(GRID)])


def measure(arch: str, folder: Path, seconds_per_grid: float | None) -> dict[str, object]:
    model = transformers.AutoModelForImageTextToText.from_pretrained(build_tiny_model(arch, folder / arch)).eval()
    config = model.config
    merge = int(config.vision_config.spatial_merge_size)
    types, original_grids, grid = sequence(arch, merge)
    ids = torch.full_like(types, 0)
    ids[types == VIDEO] = config.video_token_id
    mask = torch.ones_like(types)
    kwargs = {"video_grid_thw": grid, "attention_mask": mask}
    spg = None
    if seconds_per_grid is not None:
        spg = torch.tensor([seconds_per_grid])
        kwargs["second_per_grid_ts"] = spg
    own, _ = model.model.get_rope_index(ids, types, **kwargs)
    tps = getattr(config.vision_config, "tokens_per_second", None) if arch == "qwen2_5_vl" else None
    spg_orig = None if arch == "qwen3_vl" else spg  # Qwen3-VL's time is the text stamp, not a position offset
    original, _ = mrope_positions(
        types,
        spatial_merge_size=merge,
        video_grid_thw=original_grids,
        second_per_grid_ts=spg_orig,
        tokens_per_second=tps,
        attention_mask=mask,
    )
    video = types[0] == VIDEO
    last_video = int(torch.nonzero(video).max())
    return {
        "arch": arch,
        "seconds": "–" if seconds_per_grid is None else f"{seconds_per_grid:g}",
        "last_video_time": int(original[0, 0, video].max()),
        "next_text_original": int(original[0, 0, last_video + 1]),
        "next_text_library": int(own[0, 0, last_video + 1]),
        "equal": bool(torch.equal(own, original)),
        "first_diff": None if torch.equal(own, original) else int(torch.nonzero((own != original).any(dim=0)[0]).min()),
    }


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch, seconds in (("qwen2_vl", None), ("qwen2_5_vl", 1.0), ("qwen2_5_vl", 7.5), ("qwen3_vl", None)):
            rows.append(measure(arch, Path(tmp), seconds))
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    print()
    print(
        "| architecture | seconds per temporal grid | last video time position | next text position, original rule "
        f"| transformers {transformers.__version__} | every position equal |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['arch']} | {r['seconds']} | {r['last_video_time']} | {r['next_text_original']} "
            f"| {r['next_text_library']} | {'yes' if r['equal'] else 'no (first at token ' + str(r['first_diff']) + ')'} |"
        )


if __name__ == "__main__":
    main()
