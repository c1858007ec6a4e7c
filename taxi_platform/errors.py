"""Errors that mean "this input is bad": they fail a run once, clearly, and are never retried."""

from __future__ import annotations


class BadInputError(Exception):
    """A file or partition that cannot be loaded as it is. The message names the file, the
    partition and (where there is one) the column, and says what to do."""

    def __init__(self, message: str, *, file: str | None = None, partition: str | None = None,
                 column: str | None = None):
        super().__init__(message)
        self.file, self.partition, self.column = file, partition, column

    @property
    def metadata(self) -> dict[str, str]:
        return {k: v for k, v in
                {"file": self.file, "partition": self.partition, "column": self.column}.items() if v}


class NotPublishedError(BadInputError):
    """The source answered 404: the month is not (yet) published there."""
