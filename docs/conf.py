"""Sphinx configuration of the metamsc documentation site.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (see the README).
The guide's ``>>>`` examples are executed while the site builds (``_ext/rundoctest.py``) and
every figure of the gallery is drawn by matplotlib's ``plot`` directive, so a broken example
fails the build.
"""

import os
import sys

sys.path.insert(0, os.path.abspath("_ext"))

import metamsc  # noqa: E402

project = "metamsc"
author = "the metamsc authors"
copyright = "2026, the metamsc authors"
version = release = metamsc.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
    "rundoctest",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
root_doc = "index"
nitpicky = False

# API reference
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# figures of the gallery and the guide: executed at build time
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.max_open_warning": 0}
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\nimport metamsc as mm\n"

html_theme = "furo"
html_title = f"metamsc {release}"
html_static_path = []
