"""The lake's Delta tables, each read at its latest version through ``deltalake``.

A table is a directory with a ``_delta_log`` under the lake root; its name is the
directory's name.  Reading goes through ``deltalake`` -> ``pyarrow.dataset`` so that
nothing is downloaded at query time (DuckDB's delta extension would be).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.dataset as ds
from deltalake import DeltaTable

from haeryu.stores.warehouse.errors import MISSING_FILE_ADVICE, TableError

DELTA_LOG = "_delta_log"
_COMMIT_FILE = re.compile(r"^\d{20}\.json$")


def find_tables(root: Path) -> dict[str, Path]:
    """Table name -> directory, for every Delta table directly under ``root``."""
    if not root.is_dir():
        return {}
    return {
        child.name: child
        for child in sorted(root.iterdir())
        if child.is_dir() and (child / DELTA_LOG).is_dir()
    }


def short_reason(error: BaseException) -> str:
    """The first lines of a deltalake error, without the Rust backtrace it carries."""
    text = str(error).split("\n   0:", 1)[0].strip()
    return text or type(error).__name__


def damaged_commit_file(path: Path) -> Path | None:
    """The first commit file of ``path``'s log that is not one JSON object per line."""
    log = path / DELTA_LOG
    for entry in sorted(log.iterdir()):
        if not _COMMIT_FILE.match(entry.name):
            continue
        try:
            for line in entry.read_text(encoding="utf-8").splitlines():
                if line.strip() and not isinstance(json.loads(line), dict):
                    return entry
        except (UnicodeDecodeError, json.JSONDecodeError):
            return entry
    return None


@dataclass
class LakeTable:
    """One Delta table; :meth:`refresh` moves it to the newest committed version."""

    name: str
    path: Path
    _table: DeltaTable | None = field(default=None, repr=False)
    _version: int | None = None
    _dataset: ds.Dataset | None = field(default=None, repr=False)
    _columns: list[str] = field(default_factory=list)

    def refresh(self) -> bool:
        """Load the latest version; True when it changed since the last call.

        Raises :class:`TableError` when the log cannot be read.
        """
        try:
            if self._table is None:
                self._table = DeltaTable(str(self.path))
            else:
                self._table.update_incremental()
            version = self._table.version()
            if version == self._version:
                return False
            self._check_files(self._table)
            self._dataset = None  # built when first needed, for this version
            self._columns = list(self._table.schema().to_arrow().names)
            self._version = version
            return True
        except TableError:
            self._table = None
            self._dataset = None
            self._version = None
            raise
        except Exception as error:  # deltalake raises its own and OS errors alike
            self._table = None
            self._dataset = None
            self._version = None
            raise self._explain(error) from error

    def _check_files(self, table: DeltaTable) -> None:
        # A scan that meets a missing file fails deep inside DuckDB or pyarrow, with a
        # message that does not say which table or what to do: look first.
        missing = [
            uri
            for uri in table.file_uris()
            if "://" not in uri.removeprefix("file://")
            and not Path(uri.removeprefix("file://")).exists()
        ]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise TableError(
                self.name,
                str(self.path),
                f"version {table.version()} lists data file {missing[0]}{more}, which does not exist",
                advice=MISSING_FILE_ADVICE.replace("PATH", repr(str(self.path))),
            )

    def _explain(self, error: BaseException) -> TableError:
        reason = short_reason(error)
        bad = damaged_commit_file(self.path) if (self.path / DELTA_LOG).is_dir() else None
        if bad is not None:
            reason += f" (the damaged commit file is {bad})"
        return TableError(self.name, str(self.path), reason)

    @property
    def version(self) -> int | None:
        """The Delta version read by the last :meth:`refresh`."""
        return self._version

    @property
    def delta(self) -> DeltaTable:
        """The ``deltalake`` table at the version of the last :meth:`refresh`."""
        if self._table is None:
            self.refresh()
        assert self._table is not None
        return self._table

    @property
    def columns(self) -> list[str]:
        """Column names at the version of the last :meth:`refresh`."""
        if self._table is None:
            self.refresh()
        return list(self._columns)

    @property
    def dataset(self) -> ds.Dataset:
        """The table at the version of the last :meth:`refresh`, as a lazy pyarrow dataset."""
        if self._dataset is None:
            try:
                self._dataset = self.delta.to_pyarrow_dataset()
            except Exception as error:
                raise self._explain(error) from error
        return self._dataset
