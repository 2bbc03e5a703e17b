"""The package's errors: one class per kind of user mistake, each with attributes.

The lowest layer: every module may raise these, none of them imports anything of the package.
Each error keeps what it is about as attributes (``file``, ``key``, ``row``, ``column``,
``study``) so that a caller routes or re-words it by attribute, never by parsing its text;
``str(err)`` is one line naming the file and the key or row, which is what the CLI prints
(without a traceback).

``MetamscError`` derives from ``ValueError``, so ``except ValueError`` in a notebook keeps
catching bad input.
"""

from __future__ import annotations

__all__ = ["MetamscError", "SpecError", "DataError", "NoStudyLeft", "ValidationError",
           "OutputError"]


class MetamscError(ValueError):
    """A user's mistake: ``str(err)`` is one line; the CLI prints it without a traceback.

    ``file`` is the file the mistake is in (None when it is in an argument), ``message`` the
    text after the file.
    """

    def __init__(self, file: object, message: str | None = None) -> None:
        if message is None:  # one argument: a message that names its own place
            file, message = None, file
        self.file = None if file is None else str(file)
        self.message = " ".join(str(message).split())  # one line, whatever the cause said
        super().__init__(str(self))

    def __str__(self) -> str:
        return self.message if self.file is None else f"{self.file}: {self.message}"

    def __reduce__(self):  # picklable with keyword attributes (multiprocessing, pytest-xdist)
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls, state):
    err = cls.__new__(cls)
    err.__dict__.update(state)
    ValueError.__init__(err, str(err))
    return err


class SpecError(MetamscError):
    """A bad analysis spec: ``file`` is the spec, ``key`` the spec key at fault (or None)."""

    def __init__(self, file: object, message: str | None = None, *,
                 key: str | None = None) -> None:
        self.key = key
        super().__init__(file, message)


class DataError(MetamscError):
    """Bad input data: ``file`` is the data file (or the spec), ``row`` its 1-based line number
    in the CSV (header = line 1), ``column`` the column and ``study`` the study label, each None
    when unknown."""

    def __init__(self, file: object, message: str | None = None, *, row: int | None = None,
                 column: str | None = None, study: str | None = None) -> None:
        self.row, self.column, self.study = row, column, study
        super().__init__(file, message)

    def __str__(self) -> str:
        where = [] if self.file is None else [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.study is not None:
            where.append(f"study {self.study!r}")
        return ": ".join(where + [self.message])


class NoStudyLeft(DataError):
    """Every study of a (sub)analysis was left out."""


class ValidationError(MetamscError):
    """Curated data that fail ``metamsc validate``: ``file`` is the data folder, ``errors`` the
    number of errors found."""

    def __init__(self, file: object, message: str | None = None, *, errors: int = 0) -> None:
        self.errors = errors
        super().__init__(file, message)


class OutputError(MetamscError):
    """An output that must not be written (over an input, onto a folder, outside the project):
    ``file`` is the output path, ``key`` the spec key that asked for it (or None)."""

    def __init__(self, file: object, message: str | None = None, *,
                 key: str | None = None) -> None:
        self.key = key
        super().__init__(file, message)
