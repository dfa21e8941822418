"""Build a candidate frame from numpy columns at a small fixed cost per column.

`population.sample` and `population.retest_labs` are called once per batch of 1,024 candidates, many
times per replicate. Through polars' public constructors each column costs 10-25 us of Python-side
checks (a few us of real work), a label column's `gather` and a null mask's `when/then` run a query
(~0.1-0.2 ms each), and `DataFrame.with_columns` another; for ~130 columns that was more than half of a
batch's cost (issue 16). `Columns` collects the columns with polars' native series constructors (the
ones its public `pl.Series(name, ndarray)` ends in, called with the same arguments) and makes the frame
in one call. The native path is used only when a probe at import builds a frame of every column kind
both ways and gets equal frames (same names, dtypes, values and nulls); otherwise, and when
`NATIVE` is set to False, every column goes through the public API, with the same result.
"""

from __future__ import annotations

import numpy as np
import polars as pl

try:  # polars >= 1.30 keeps the compiled module in polars._plr, earlier 1.x in polars.polars
    from polars._plr import PyDataFrame, PySeries
except ImportError:  # pragma: no cover - depends on the installed polars
    try:
        from polars.polars import PyDataFrame, PySeries  # type: ignore[no-redef]
    except ImportError:
        PyDataFrame = PySeries = None  # type: ignore[assignment,misc]

_LABELS: dict[tuple[tuple[str, ...], bool], pl.Series] = {}


def _labels(labels: tuple[str, ...], dtype) -> pl.Series:
    """The labels, then a null, as one series (a null index gathers the last element)."""
    key = (labels, dtype == pl.Boolean)
    s = _LABELS.get(key)
    if s is None:
        s = _LABELS[key] = pl.Series("", [*labels, None], dtype=dtype)
    return s


class Columns:
    """Columns of one frame, in the order added; `frame()` makes the DataFrame."""

    __slots__ = ("_cols", "_names", "_native")

    def __init__(self, native: bool | None = None):
        self._native = NATIVE if native is None else native
        self._cols: list = []
        self._names: list[str] = []

    def _add(self, name: str, s) -> None:
        self._names.append(name)
        self._cols.append(s)

    def f64(self, name: str, values, keep: np.ndarray | None = None) -> None:
        """Float64 column; null where `keep` is False (and, with `keep`, wherever the value is NaN)."""
        values = np.asarray(values, dtype=np.float64)
        nan_to_null = keep is not None
        if nan_to_null:
            values = np.where(keep, values, np.nan)
        if self._native:
            self._add(name, PySeries.new_f64(name, np.ascontiguousarray(values), nan_to_null))
        else:
            self._add(name, pl.Series(name, values, nan_to_null=nan_to_null))

    def i64(self, name: str, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.int64)
        if self._native:
            self._add(name, PySeries.new_i64(name, np.ascontiguousarray(values), False))
        else:
            self._add(name, pl.Series(name, values))

    def flag(self, name: str, values: np.ndarray) -> None:
        """Boolean column."""
        values = np.asarray(values, dtype=bool)
        if self._native:
            self._add(name, PySeries.new_bool(name, np.ascontiguousarray(values), False))
        else:
            self._add(name, pl.Series(name, values, dtype=pl.Boolean))

    def text(self, name: str, labels: tuple[str, ...], idx: np.ndarray,
             keep: np.ndarray | None = None) -> None:
        """String column: labels[idx], null where `keep` is False."""
        self._gather(name, _labels(tuple(labels), pl.String), len(labels), idx, keep)

    def flag_or_null(self, name: str, values: np.ndarray, keep: np.ndarray) -> None:
        """Boolean column, null where `keep` is False."""
        self._gather(name, _labels((False, True), pl.Boolean), 2, np.asarray(values, dtype=np.int64), keep)

    def _gather(self, name, source: pl.Series, null_at: int, idx, keep) -> None:
        idx = np.asarray(idx)
        if keep is not None:
            idx = np.where(keep, idx, null_at)
        if self._native:
            s = source._s.gather_with_series(PySeries.new_u32("", idx.astype(np.uint32), False))
            s.rename(name)
            self._add(name, s)
        else:
            self._add(name, source.gather(idx).alias(name))

    def series(self, s: pl.Series) -> None:
        """An existing column, unchanged."""
        self._add(s.name, s._s if self._native else s)

    def frame(self) -> pl.DataFrame:
        if self._native:
            return pl.DataFrame._from_pydf(PyDataFrame(self._cols))
        return pl.DataFrame(self._cols)

    def replacing(self, frame: pl.DataFrame) -> pl.DataFrame:
        """`frame.with_columns(these columns)` without a query: a column of the same name is replaced
        where it stands, the others are appended in the order added. The columns must have
        frame.height rows."""
        mine = dict(zip(self._names, self._cols, strict=True))
        if len(mine) != len(self._names):
            raise ValueError("a column added twice")
        rebuilt = Columns(self._native)
        old = frame._df.get_columns() if self._native else frame.get_columns()
        for name, s in zip(frame.columns, old, strict=True):
            rebuilt._add(name, mine.pop(name) if name in mine else s)
        for name, s in mine.items():
            rebuilt._add(name, s)
        return rebuilt.frame()


def filled(s: pl.Series, value: float) -> np.ndarray:
    """`s.fill_null(value).to_numpy()` of a float column, without the query when every NaN numpy
    gives is a null (polars writes nulls as NaN): then the NaNs are replaced by `value`."""
    arr = s.to_numpy()
    nulls = s.null_count()
    if not nulls:
        return arr
    nan = np.isnan(arr)
    if int(nan.sum()) != nulls:  # NaN values beside the nulls: let polars tell them apart
        return s.fill_null(value).to_numpy()
    if np.isnan(value):
        return arr
    return np.where(nan, value, arr)


def _probe_frame(native: bool) -> pl.DataFrame:
    c = Columns(native)
    keep = np.array([True, False, True])
    c.f64("a", [1.5, np.nan, -0.0])
    c.f64("b", [1.5, 2.0, np.nan], keep)
    c.i64("c", np.array([3, -1, 0]))
    c.flag("d", np.array([True, False, True]))
    c.text("e", ("x", "yy"), np.array([1, 0, 1]))
    c.text("f", ("x", "yy"), np.array([1, 0, 1]), keep)
    c.flag_or_null("g", np.array([False, True, True]), keep)
    c.series(pl.Series("h", [1, 2, 3]))
    again = Columns(native)
    again.f64("b", [0.5, 1.0, 2.0])
    again.text("new", ("x", "yy"), np.array([0, 0, 1]), keep)
    return again.replacing(c.frame())


def _native_works() -> bool:
    if PySeries is None or PyDataFrame is None:
        return False
    try:
        native, public = _probe_frame(True), _probe_frame(False)
    except Exception:  # pragma: no cover - an incompatible polars: the public path is the answer
        return False
    return native.schema == public.schema and native.equals(public, null_equal=True)


NATIVE: bool = False
NATIVE = _native_works()
"""Whether columns go through polars' native constructors (see the module docstring)."""
