"""Serialisation: result objects to plain dictionaries, deterministic JSON, atomic and staged
writes. The manuscript table is :mod:`metamsc.summary`; the manifest of a reproduced project is
:mod:`metamsc.project.manifest`."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OutputError

__all__ = ["result_dict", "clean", "dumps", "write_json", "write_atomic", "Staging"]

#: significant digits kept in written files. Iterative fits (GLMM quadrature, optimisers) agree
#: across machines only to about 1e-11 relative, so 12 digits changed bytes between two machines
#: of the same kind; 8 digits are far beyond what a table prints and stable across machines.
DIGITS = 8

#: fit diagnostics that are numerical noise by nature (they differ between machines) and are
#: kept on the result object but not written to files
_NOISY = ("gradient_max", "hessian_eigenvalues", "nfev")


def clean(x: Any) -> Any:
    """Make ``x`` JSON-ready: floats rounded to DIGITS significant digits, NaN -> None."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return [clean(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if not math.isfinite(x):
            return None
        r = float(f"{x:.{DIGITS}g}")
        return 0.0 if r == 0 else r
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return clean(dataclasses.asdict(x))
    return x


def dumps(obj: Any) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(clean(obj), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def temp_path(path: str | Path) -> Path:
    """A fresh temporary file beside ``path``, with the same suffix (figure writers choose the
    format by suffix), to be renamed over ``path`` once complete."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # the mode of a file written the ordinary way
    return Path(tmp)


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename: a reader never sees a
    half-written file, and a failure leaves the earlier file as it was."""
    import os

    path = Path(path)
    tmp = temp_path(path)
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8", newline="")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class Staging:
    """Outputs written to temporary files and renamed into place together on :meth:`commit`,
    so that a run that fails half-way leaves every earlier output intact. ``protected`` paths
    (the inputs) are never written."""

    def __init__(self, protected: set[Path] = frozenset()):
        self.protected = {Path(p).resolve() for p in protected}
        self.pending: list[tuple[Path, Path]] = []
        self.made: list[Path] = []

    def path(self, final: str | Path) -> Path:
        """A temporary path to write ``final`` to; checked against the inputs."""
        final = Path(final)
        if final.resolve() in self.protected:
            raise OutputError(final, "refusing to write an output over an input of the run")
        if final.is_dir():
            raise OutputError(final, "an output path is a folder")
        missing = [d for d in (final.parent, *final.parent.parents) if not d.exists()]
        self.made.extend(missing)  # folders to remove again if the run fails
        tmp = temp_path(final)
        self.pending.append((tmp, final))
        return tmp

    def write(self, final: str | Path, data: str | bytes) -> Path:
        tmp = self.path(final)
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8", newline="")
        else:
            tmp.write_bytes(data)
        return Path(final)

    def commit(self) -> None:
        import os

        for tmp, final in self.pending:
            os.replace(tmp, final)
        self.pending = []
        self.made = []

    def discard(self) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)
        self.pending = []
        for d in sorted(set(self.made), key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:  # not empty, or gone
                pass
        self.made = []

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_json(obj: Any, path: str | Path, stage: Staging | None = None) -> Path:
    """Deterministic JSON (:func:`dumps`) written atomically, or into ``stage``."""
    if stage is not None:
        return stage.write(path, dumps(obj))
    return write_atomic(path, dumps(obj))


_SCALARS = ("measure", "method", "test", "level", "k", "estimate", "se", "statistic", "df",
            "pvalue", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "pi_se", "tau2", "se_tau2",
            "tau2_ci_lb", "tau2_ci_ub", "i2", "i2_ci_lb", "i2_ci_ub", "h2", "h2_ci_lb",
            "h2_ci_ub", "q", "q_df", "q_pvalue", "vt", "s2w")


def result_dict(res) -> dict[str, Any]:
    """The fields of a :class:`~metamsc.results.MetaResult` as plain Python values."""
    d: dict[str, Any] = {name: getattr(res, name) for name in _SCALARS}
    d["tau"] = res.tau
    d["natural"] = None if res.natural is None else dataclasses.asdict(res.natural)
    lb, ub = res.study_intervals()
    nat = res.study_natural()
    studies = []
    for i, lab in enumerate(res.labels):
        row = {"study": lab, "yi": res.yi[i], "vi": res.vi[i], "ci_lb": lb[i], "ci_ub": ub[i],
               "weight": res.weights[i]}
        if nat is not None:
            row["natural"] = {"estimate": nat[0][i], "ci_lb": min(nat[1][i], nat[2][i]),
                              "ci_ub": max(nat[1][i], nat[2][i])}
        studies.append(row)
    d["studies"] = studies
    d["excluded"] = [dataclasses.asdict(e) for e in res.excluded]
    d["conventions"] = dataclasses.asdict(res.conventions)
    d["diagnostics"] = dataclasses.asdict(res.diagnostics)
    d["warnings"] = list(res.warnings)
    extra = res._typed_extra()  # the kind's typed fields (MH, Peto, GLMM), under their JSON keys
    if extra:
        d["extra"] = {key: v for key, v in extra.items() if key not in _NOISY}
    d["model"] = res.model
    if res.subgroups is not None:
        d["subgroups"] = subgroups_dict(res)
    return d


def subgroups_dict(res) -> dict[str, Any]:
    """The subgroups of a result and the test for subgroup differences, as plain values."""
    sg = res.subgroups
    groups = []
    for name, sub in sg.items():
        g = {key: v for key, v in result_dict(sub).items() if key != "excluded"}
        groups.append(dict(group=name, **g))
    t = res.subgroup_test
    test = None if t is None else {key: v for key, v in dataclasses.asdict(t).items()
                                   if not (key == "df2" and v is None)}
    return {"tau2_common": sg.tau2_common, "groups": groups, "test": test, "notes": list(sg.notes)}
