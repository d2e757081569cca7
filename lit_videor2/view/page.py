"""Render the trace viewer's page: ``index.html`` (Jinja2 template) with ``static/`` beside it.

The items are embedded as JSON in a ``<script type="application/json">`` element, with every ``<`` written as
``\\u003c`` so no completion can close the element; the page's script parses it with ``JSON.parse`` and builds the
DOM with ``textContent`` only, so model output always renders as text. Autoescaping is on for everything the
template itself prints.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from markupsafe import Markup

__all__ = ["STATIC_FILES", "embed_json", "render_page", "write_page"]

#: Files copied next to ``index.html``.
STATIC_FILES = ("viewer.css", "viewer.js")


def embed_json(data: Any) -> Markup:
    """JSON safe inside a ``<script type="application/json">`` element: ``<``, ``>`` and ``&`` as ``\\u`` escapes
    (so ``</script>`` and ``<!--`` cannot occur), still valid JSON."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("lit_videor2.view", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(data: dict[str, Any]) -> str:
    """The HTML of the page for ``data`` (``title``, ``mode``, ``items``, ``facets``, ...; see ``build.py``)."""
    template = _environment().get_template("index.html.j2")
    return template.render(title=data["title"], subtitle=data.get("subtitle", ""), data_json=embed_json(data))


def write_page(out: Path, data: dict[str, Any]) -> Path:
    """Write ``out/index.html`` (atomically) and ``out/static/*``; returns the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    static = out / "static"
    static.mkdir(exist_ok=True)
    package = resources.files("lit_videor2.view") / "static"
    for name in STATIC_FILES:
        with resources.as_file(package / name) as src:
            shutil.copyfile(src, static / name)
    page = out / "index.html"
    tmp = page.with_suffix(".tmp")
    tmp.write_text(render_page(data), encoding="utf-8")
    os.replace(tmp, page)
    return page
