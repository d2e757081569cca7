"""The demo and test fixtures: tiny Qwen-VL checkpoints, synthetic temporal videos, and the demo-assets callback.

Nothing in the product packages (``models/``, ``data/``, the stages) imports from here; the demo configs and the
tests do. ``lit_videor2.demo.PrepareDemoAssets`` is the class path ``configs/demo/*.yaml`` name.
"""

from lit_videor2.demo.assets import PrepareDemoAssets, prepare_assets

__all__ = ["PrepareDemoAssets", "prepare_assets"]
