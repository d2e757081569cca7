"""Trace viewer: ``lit_videor2 view`` writes a static page of predictions or GRPO completions beside their frames.

Modules: :mod:`~lit_videor2.view.annotate` (pure per-completion annotations), :mod:`~lit_videor2.view.loading`
(inputs -> items), :mod:`~lit_videor2.view.sources` (the run config: videos, sampling, records),
:mod:`~lit_videor2.view.thumbs` (frame thumbnails), :mod:`~lit_videor2.view.page` (Jinja2 rendering),
:mod:`~lit_videor2.view.build` (the whole build) and :mod:`~lit_videor2.view.cli` (the command).
"""

from lit_videor2.view.build import BuildReport, ViewOptions, build_view

__all__ = ["BuildReport", "ViewOptions", "build_view"]
