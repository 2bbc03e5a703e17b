"""The examples in the docstrings run, and every public function documents itself.

Each module of the package is one test: its docstring examples (``>>>``) run with ELLIPSIS and
NORMALIZE_WHITESPACE (``pytest --doctest-modules metamsc`` runs the same examples). The guide's
examples run when the documentation site is built (``docs/_ext/rundoctest.py``); here we check
that a broken example would fail that build.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import metamsc

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("Parameters", "Returns", "References", "Examples")


def _modules() -> list[str]:
    names = ["metamsc"]
    for info in pkgutil.walk_packages(metamsc.__path__, "metamsc."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    module = importlib.import_module(name)
    tests = doctest.DocTestFinder().find(module, name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out: list[str] = []
    try:
        for t in tests:
            runner.run(t, out=out.append)
    finally:
        plt.close("all")
    assert runner.failures == 0, "".join(out)


def _public_functions():
    from metamsc import plots

    names = [n for n in metamsc.__all__ if inspect.isfunction(getattr(metamsc, n))]
    return names + [f"plots.{n}" for n in plots.__all__ if inspect.isfunction(getattr(plots, n))]


@pytest.mark.parametrize("name", _public_functions())
def test_public_function_docstring_is_complete(name):
    from metamsc import plots

    owner, _, attr = name.rpartition(".")
    doc = inspect.getdoc(getattr(plots if owner == "plots" else metamsc, attr)) or ""
    for section in SECTIONS:
        assert re.search(rf"^{section}\n-{{{len(section)}}}$", doc, re.M), f"{name}: no {section} section"
    examples = doctest.DocTestParser().get_examples(doc)
    assert examples, f"{name}: the Examples section has no >>> example"
    assert any(e.want for e in examples), f"{name}: no example shows an output to check"


def test_api_reference_lists_the_public_api():
    api = (ROOT / "docs" / "api.rst").read_text()
    listed = set(re.findall(r"^   (\w+)$", api, re.M))
    from metamsc import plots

    wanted = {n for n in metamsc.__all__ if n != "__version__"}
    wanted |= {n for n in plots.__all__ if inspect.isfunction(getattr(plots, n))}
    assert wanted - listed == set()


def _rundoctest():
    spec = importlib.util.spec_from_file_location("rundoctest", ROOT / "docs" / "_ext" / "rundoctest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_guide_runner_reports_a_broken_example():
    run_text = _rundoctest().run_text
    good = "Text.\n\n>>> import metamsc as mm\n>>> round(mm.pool([0.1, 0.1], [0.01, 0.02]).tau2, 4)\n0.0\n"
    assert run_text(good, "good")[:2] == (0, 2)
    failed, attempted, report = run_text(good.replace("0.0\n", "1.0\n"), "bad")
    assert (failed, attempted) == (1, 2)
    assert "Expected:\n    1.0\nGot:\n    0.0" in report


def test_guide_pages_have_examples():
    pages = sorted((ROOT / "docs" / "guide").glob("*.rst"))
    assert len(pages) >= 6
    for page in pages:
        text = page.read_text()
        assert ">>>" in text or ".. plot::" in text, f"{page.name}: nothing is executed"
