"""Sphinx extension: fixes for a clean browser console and readable outputs on the website.

Long lines of printed output wrap (``book/_static/rnncourse.css``) instead of being cut.

sphinx-thebe and sphinx-togglebutton add their inline configuration scripts each time the
environment is read, and Jupyter Book adds them again (once with an empty file name, once with
``None``), so every page declared
``const THEBE_JS_URL`` twice and the browser reported "Identifier 'THEBE_JS_URL' has
already been declared". This keeps one copy of each script.
"""

from pathlib import Path


def _unique(scripts):
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        filename = getattr(script, "filename", script) or ""  # None and "" both mean inline
        key = (str(filename), tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    return unique


def _dedupe_builder(app, env):
    builder = app.builder
    if hasattr(builder, "_js_files"):
        builder._js_files[:] = _unique(builder._js_files)
    return []


def _dedupe_page(app, pagename, templatename, context, doctree):
    if context.get("script_files"):
        context["script_files"] = _unique(context["script_files"])


def _static_path(app):
    app.config.html_static_path.append(str(Path(__file__).resolve().parents[1] / "_static"))


def setup(app):
    app.connect("builder-inited", _static_path)
    app.add_css_file("rnncourse.css")
    app.connect("env-updated", _dedupe_builder)
    app.connect("html-page-context", _dedupe_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
