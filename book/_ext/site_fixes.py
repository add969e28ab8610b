"""Sphinx extension: fixes for a clean browser console and readable outputs on the website.

Long lines of printed output wrap and printed tables scroll sideways instead of breaking a
number (``book/_static/rnncourse.css``). Every image links to its full-size file, so a reader
on a phone opens a figure at its own resolution and zooms it (:func:`_link_images`). The
sidebar buttons work at every width (``book/_static/rnncourse.js`` says why they did not).
The intro's table of run times is filled from the last ``make notebooks``
(:func:`_notebook_times`), so it never quotes a run that did not happen. Search sends a
reader looking for a Keras option to the chapter that teaches it (:class:`TaughtTerms`).

sphinx-thebe and sphinx-togglebutton add their inline configuration scripts each time the
environment is read, and Jupyter Book adds them again (once with an empty file name, once with
``None``), so every page declared
``const THEBE_JS_URL`` twice and the browser reported "Identifier 'THEBE_JS_URL' has
already been declared". This keeps one copy of each script.
"""

import json
import os
import posixpath
from pathlib import Path

from docutils import nodes
from docutils.transforms import Transform
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.osutil import relative_uri

logger = logging.getLogger(__name__)


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


def _link_images(app, doctree, docname):
    """Wrap every image that is not a link yet in a link to its full-size file.

    Sphinx does this itself only for images given a ``width`` or ``scale``; a figure that a
    notebook printed is shrunk to the page's width by CSS instead, so on a phone it stayed
    at 342 px with nothing to tap. The link's target is the file the HTML builder copies
    the image to (``_images/<name>``), computed as Sphinx computes it for scaled images.
    """
    if app.builder.format != "html":
        return
    images = app.builder.env.images
    imgpath = relative_uri(app.builder.get_target_uri(docname), "_images")
    for image in list(doctree.findall(nodes.image)):
        uri = image.get("uri", "")
        if isinstance(image.parent, nodes.reference) or not uri or uri.startswith("data:"):
            continue
        target = posixpath.join(imgpath, images[uri][1]) if uri in images else uri
        reference = nodes.reference("", "", internal=True, refuri=target,
                                    classes=["rnncourse-full-size"],
                                    reftitle="Open the figure at full size")
        image.replace_self(reference)
        reference.append(image)


def _notebook_times(app, config):
    """MyST substitutions for the intro: ``nb_time_00`` ... (one per notebook, its CI-scale
    seconds as the root conftest.py recorded them in ``RNNCOURSE_NOTEBOOK_TIMES``) and
    ``nb_times_measured`` (when and on what). Without a recorded run they say so."""
    path = os.environ.get("RNNCOURSE_NOTEBOOK_TIMES") or str(
        Path(app.confdir) / "_build" / "notebook-times.json")
    try:
        times = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        times = {}
    substitutions = dict(getattr(config, "myst_substitutions", None) or {})
    for notebook in sorted(Path(app.confdir, "book").glob("[0-9][0-9]_*.ipynb")):
        record = times.get(notebook.name)
        substitutions[f"nb_time_{notebook.name[:2]}"] = (
            _duration(record["seconds"]) if record else "not measured")
    if times:
        records = list(times.values())
        dates = sorted({r["measured"][:10] for r in records})
        first = records[0]
        at_once = "one notebook" if first["at_once"] == 1 else f"{first['at_once']} notebooks"
        substitutions["nb_times_measured"] = (
            f"measured by `make notebooks` on {' to '.join(dict.fromkeys([dates[0], dates[-1]]))}"
            f" on a {first['machine']} machine with {first['cpus']} CPU cores, {at_once} at a "
            "time")
    else:
        substitutions["nb_times_measured"] = (
            "not measured for this build: run `make notebooks` before building the site")
    config.myst_substitutions = substitutions


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


class TaughtTerms(Transform):
    """An index entry for each term in ``rnncourse_taught_terms`` (``_config.yml``), in the
    section of the page that teaches it: the first section whose own text names the term.

    Sphinx's search ranks a main index entry that equals the query (score 100) above a page
    that merely mentions it (5), so searching ``clipnorm`` opens the chapter that explains
    it, not the API page whose docstrings mention it, and the book's index lists it. Runs
    before Sphinx collects index entries (SphinxDomains, priority 850).
    """

    default_priority = 800

    def apply(self):
        env = getattr(self.document.settings, "env", None)
        if env is None:
            return
        for term, docname in (env.config.rnncourse_taught_terms or {}).items():
            if docname != env.docname:
                continue
            section = self._teaching_section(term)
            if section is None:
                logger.warning("rnncourse_taught_terms: %s never mentions %r", docname, term,
                               location=self.document)
                continue
            index = addnodes.index(entries=[("single", term, section["ids"][0], "main", None)])
            section.insert(1, index)  # after the title

    def _teaching_section(self, term: str):
        for text in self.document.findall(nodes.Text):
            if term in text:
                section = text.parent
                while section is not None and not (isinstance(section, nodes.section)
                                                   and section.get("ids")):
                    section = section.parent
                if section is not None:
                    return section
        return None


def _static_path(app):
    app.config.html_static_path.append(str(Path(__file__).resolve().parents[1] / "_static"))


def setup(app):
    app.add_config_value("rnncourse_taught_terms", {}, "env", types=[dict])
    app.add_transform(TaughtTerms)
    app.connect("config-inited", _notebook_times)
    app.connect("builder-inited", _static_path)
    app.add_css_file("rnncourse.css")
    app.add_js_file("rnncourse.js", loading_method="defer")
    app.connect("doctree-resolved", _link_images)
    app.connect("env-updated", _dedupe_builder)
    app.connect("html-page-context", _dedupe_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
