"""Record values kept as bytes or UTF-8 text, in one ``value`` column."""

from __future__ import annotations

import polars as pl

from haeryu.stream.errors import PlanError
from haeryu.stream.formats.base import payload


class RawFormat:
    """Values kept as they are, in a ``value`` column (Binary, or String with utf8)."""

    name = "raw"

    def __init__(self, *, as_text: bool = False) -> None:
        self.as_text = as_text

    def decode(self, values: list[bytes]) -> tuple[pl.DataFrame, list[int], list[tuple[int, str]]]:
        """Put the values in one column; with ``as_text`` invalid UTF-8 is an error."""
        column = pl.Series("value", values, dtype=pl.Binary)
        if not self.as_text:
            return column.to_frame(), list(range(len(values))), []
        texts: list[str | None] = []
        good: list[int] = []
        errors: list[tuple[int, str]] = []
        for i, value in enumerate(values):
            try:
                texts.append(value.decode())
                good.append(i)
            except UnicodeDecodeError as exc:
                errors.append((i, f"value is not UTF-8 text: {exc}"))
        return pl.DataFrame({"value": texts}, schema={"value": pl.String}), good, errors

    def encode(self, frame: pl.DataFrame) -> list[bytes]:
        """Write the ``value`` column (or the only user column) as the record value."""
        data = payload(frame)
        name = "value" if "value" in data.columns else (data.columns[0] if data.width == 1 else "")
        if not name:
            raise PlanError(
                "the raw format writes one column: name it 'value' or select a single column"
            )
        column = data[name]
        if column.dtype == pl.String:
            return [v.encode() if v is not None else b"" for v in column.to_list()]
        if column.dtype != pl.Binary:
            column = column.cast(pl.String)
            return [v.encode() if v is not None else b"" for v in column.to_list()]
        return [v if v is not None else b"" for v in column.to_list()]
