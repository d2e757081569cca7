"""Helpers shared by the data tests (kept out of the package: test code does not live in production modules)."""

from __future__ import annotations

import numpy as np

from lit_videor2.demo.synthetic_scenes import BACKGROUND, GRID, _as_scene, _cell_centre, visible_at

#: Largest per-channel error tolerated at a shape's centre after H.264/yuv420p (and resizing).
TOL = 48


def assert_frame_shows(frame: np.ndarray, record: dict, t: float, where: str = "") -> None:
    """Assert a decoded frame ``uint8 [H, W, 3]`` shows what the synthetic scene shows at time ``t``.

    Every shape visible at ``t`` has its colour at its centre; every shape not (yet / any more) visible leaves
    its cell's centre at the background colour. Coordinates are scaled when the frame was resized.
    """
    scene = _as_scene(record)
    sh, sw = scene.size
    h, w = frame.shape[:2]
    sy, sx = h / sh, w / sw

    def px(x: float, y: float) -> np.ndarray:
        return frame[min(h - 1, int(y * sy)), min(w - 1, int(x * sx))].astype(int)

    visible = visible_at(scene, t)
    for vs in visible:
        got = px(*vs.centre)
        assert np.abs(got - np.array(vs.rgb)).max() <= TOL, f"{where} t={t}: {vs.colour} {vs.shape} missing, got {got}"
    shown = {vs.colour for vs in visible}
    for tr in scene.tracks:
        if tr.colour in shown:
            continue
        got = px(*_cell_centre(tr.cell, scene.size))
        assert np.abs(got - np.array(BACKGROUND)).max() <= TOL, f"{where} t={t}: {tr.colour} shown too early/late"


assert GRID == 3  # the checks above rely on one shape per cell of a 3x3 board
