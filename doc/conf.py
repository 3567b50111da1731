"""Sphinx configuration of the odl_learned documentation.

Build the documentation from the repository root with::

    pip install -e ".[doc]"
    python -m sphinx -W -b html doc doc/_build/html
    python -m sphinx -b doctest doc doc/_build/doctest

The figures of the gallery are not made at build time; each example writes
its figure with ``python examples/NAME.py --out doc/_static/gallery``.
"""

import os
import shutil
import sys

import matplotlib

matplotlib.use("Agg")

sys.path.insert(0, os.path.abspath(".."))

import odl_learned  # noqa: E402

project = "odl_learned"
author = "odl_learned contributors"
copyright = "odl_learned contributors"
version = release = odl_learned.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_static_path = ["_static"]
html_theme = "alabaster"
html_theme_options = {"description": "Classical and learned reconstruction in one ODL operator algebra"}

# --- autodoc / autosummary ---------------------------------------------------------------
# The API pages are generated from the package on every build (doc/api/generated
# is not kept in the repository); stale pages of removed modules are dropped.
shutil.rmtree(os.path.join(os.path.dirname(os.path.abspath(__file__)), "api", "generated"), ignore_errors=True)
autosummary_generate = True
autosummary_imported_members = False
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types

# --- numpydoc ----------------------------------------------------------------------------
# Class members are listed by autodoc; numpydoc's own member tables would
# describe every method twice.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# --- doctest -----------------------------------------------------------------------------
# Only the explicit ``.. doctest::`` and ``.. testcode::`` blocks of the guides
# run here; the docstrings' examples run with ``pytest --doctest-modules``.
doctest_test_doctest_blocks = ""
doctest_global_setup = """
import matplotlib
matplotlib.use("Agg")
"""

# --- math ----------------------------------------------------------------------------------
mathjax3_config = {"tex": {"macros": {"R": r"\\mathbb{R}", "C": r"\\mathbb{C}"}}}


# --- asterisks in numpydoc types ------------------------------------------------------------
# numpydoc passes the type of a parameter or return value on as
# reStructuredText, so a shape written as ``(n, *shape)`` would open an
# emphasis that never closes. Asterisks in types (outside ``literals``) are
# escaped before numpydoc reads the docstring.
import re  # noqa: E402

_TYPED_SECTIONS = {"Parameters", "Other Parameters", "Returns", "Yields", "Receives", "Attributes"}
_LITERAL = re.compile(r"(``.*?``)")


def _escape_asterisks(text):
    parts = _LITERAL.split(text)
    return "".join(
        part if part.startswith("``") else re.sub(r"(?<!\\)\*", r"\\*", part) for part in parts
    )


def _escape_types(app, what, name, obj, options, lines):
    section, base = None, 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        if i + 1 < len(lines) and stripped and set(lines[i + 1].strip()) == {"-"}:
            section, base = stripped, len(line) - len(line.lstrip())
            continue
        if section not in _TYPED_SECTIONS or not stripped or set(stripped) == {"-"}:
            continue
        if len(line) - len(line.lstrip()) != base:
            continue
        if " : " in line:
            head, _, tail = line.partition(" : ")
            lines[i] = f"{head} : {_escape_asterisks(tail)}"
        elif section in {"Returns", "Yields", "Receives"}:
            lines[i] = _escape_asterisks(line)


def setup(app):
    # numpydoc rewrites docstrings at the default priority 500; run before it.
    app.connect("autodoc-process-docstring", _escape_types, priority=400)
