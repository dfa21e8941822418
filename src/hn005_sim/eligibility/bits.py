"""Row-wise figures of an (n, k) 0/1 matrix held bit-packed, one row per candidate, with numpy.

The engine keeps each candidate's failures as `ceil(k/64)` uint64 words (bit j of word c = column
64c+j, `engine.fail_words`); the chart-review flags are packed the same way (`pack_rows`). Everything
restrictiveness needs row by row (the first failing criterion in screening order, per-criterion counts
among the candidates still in chart review at each step) is computed on these words, never on an
unpacked (n, k) bool matrix: 16 bytes a candidate for 66 criteria instead of 66.

- `lowest_set`: index of the lowest set bit of `words & mask` (isolated with x & -x, its position by a
  de Bruijn multiplication and a 64-entry table);
- `column_counts`: per group and column, rows with the bit set, from one 256-bin histogram per byte
  column (`np.bincount` of group * 256 + byte, then a 256 x 8 bit table); bytes whose bits are the same
  on every row are not histogrammed.
"""

from __future__ import annotations

import ctypes

import numpy as np
import polars as pl

WORD = 64
_BIT_TABLE = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(np.int64)
"""_BIT_TABLE[v, t] = bit t of byte value v."""


_POP8 = _BIT_TABLE.sum(axis=1).astype(np.uint8)
"""Set bits of each byte value."""


def popcount_rows(bitmaps: np.ndarray) -> np.ndarray:
    """(r,) int64: set bits of each row of an (r, m) uint8 array (np.bitwise_count from numpy 2.0,
    a byte table before)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(bitmaps).sum(axis=1, dtype=np.int64)
    return _POP8[bitmaps].sum(axis=1, dtype=np.int64)


def words_for(k: int) -> int:
    return (k + WORD - 1) // WORD


def pack_rows(matrix: np.ndarray) -> np.ndarray:
    """An (n, k) bool matrix as (n, ceil(k/64)) uint64 words: bit j of word c set when column 64c+j is."""
    matrix = np.asarray(matrix, dtype=bool)
    n, k = matrix.shape
    out = np.zeros((n, words_for(k) * 8), dtype=np.uint8)
    if k:
        out[:, : (k + 7) // 8] = np.packbits(matrix, axis=1, bitorder="little")
    return out.view("<u8").astype(np.uint64, copy=False)


def mask_words(indices, k: int) -> np.ndarray:
    """(ceil(k/64),) uint64: bits set for the given column indices."""
    out = np.zeros(words_for(k), dtype=np.uint64)
    for i in np.asarray(indices, dtype=np.int64).ravel():
        out[i // WORD] |= np.uint64(1) << np.uint64(i % WORD)
    return out


def any_set(words: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(n,) bool: the row has a bit set (within `mask`)."""
    acc = np.zeros(words.shape[0], dtype=np.uint64)
    for c in range(words.shape[1]):  # word by word: a reduce along a short axis is slow in numpy
        acc |= words[:, c] if mask is None else words[:, c] & mask[c]
    return acc != 0


_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_INDEX = np.zeros(64, dtype=np.int64)
_POWERS = np.uint64(1) << np.arange(64, dtype=np.uint64)
_DEBRUIJN_INDEX[(_POWERS * _DEBRUIJN) >> np.uint64(58)] = np.arange(64)
"""Leiserson, Prokop and Randall (1998), "Using de Bruijn sequences to index a 1 in a computer word":
(2**b * D mod 2**64) >> 58 is distinct for each b < 64, so a 64-entry table gives b."""


def lowest_set(words: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(n,) int64: index of the lowest set bit of each row of `words & mask`, -1 when none is set."""
    n, w = words.shape
    out = np.full(n, -1, dtype=np.int64)
    shift = np.uint64(58)
    rows = None  # None: every row; else the rows with no bit set in the words before
    for c in range(w):
        x = words[:, c] if rows is None else words[rows, c]
        if mask is not None:
            x = x & mask[c]
        lsb = np.negative(x)  # two's complement -x: x & -x keeps only the lowest set bit
        lsb &= x
        lsb *= _DEBRUIJN
        lsb >>= shift
        at = np.take(_DEBRUIJN_INDEX, lsb.view(np.int64))
        if c:
            at += WORD * c
        hit = x != 0
        if rows is None:
            np.copyto(out, at, where=hit)
            rows = np.flatnonzero(~hit)
        else:
            out[rows[hit]] = at[hit]
            rows = rows[~hit]
        if rows.size == 0:
            break
    return out


class _ArrowArray(ctypes.Structure):
    """`struct ArrowArray` of the Arrow C data interface (a stable ABI)."""


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64), ("null_count", ctypes.c_int64), ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64), ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)), ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.c_void_p), ("release", ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowArray))),
    ("private_data", ctypes.c_void_p),
]


class _ArrowSchema(ctypes.Structure):
    """`struct ArrowSchema` of the Arrow C data interface."""


_ArrowSchema._fields_ = [
    ("format", ctypes.c_char_p), ("name", ctypes.c_char_p), ("metadata", ctypes.c_void_p),
    ("flags", ctypes.c_int64), ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowSchema))), ("dictionary", ctypes.c_void_p),
    ("release", ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowSchema))), ("private_data", ctypes.c_void_p),
]


class _ArrowStream(ctypes.Structure):
    """`struct ArrowArrayStream` of the Arrow C stream interface."""


_ArrowStream._fields_ = [
    ("get_schema", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_ArrowStream),
                                    ctypes.POINTER(_ArrowSchema))),
    ("get_next", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_ArrowStream), ctypes.POINTER(_ArrowArray))),
    ("get_last_error", ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.POINTER(_ArrowStream))),
    ("release", ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowStream))),
    ("private_data", ctypes.c_void_p),
]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def _aligned_bits(arr: _ArrowArray, length: int) -> int | None:
    """Address of the first data byte of a Boolean Arrow array of `length` values without nulls whose
    first value starts a byte; None otherwise."""
    if (arr.length == length and arr.null_count == 0 and arr.n_buffers == 2 and arr.offset % 8 == 0
            and arr.buffers[1]):
        return arr.buffers[1] + arr.offset // 8
    return None


def read_boolean_columns(frame: pl.DataFrame, out: np.ndarray, invert: bool = False) -> np.ndarray:
    """Copy the data bitmap of each column of a frame of Boolean columns into `out[j, :ceil(n/8)]`
    (uint8, LSB-first; bits past n are not defined), inverted with `invert`. Returns (width,) bool: the
    columns copied. A column is copied when it has no nulls and polars exports it in one chunk whose
    first value starts a byte; the others (and every column when the frame exports in several
    batches, or holds another type) are left for the caller to pack from the values.

    Read through the Arrow PyCapsule interface (`DataFrame.__arrow_c_stream__`, polars' own export:
    one struct array per batch, a child per column) and the structs of the Arrow C data interface (a
    stable ABI; the schema is checked to be a struct of Arrow booleans first), so pyarrow is never
    imported (0.2 s at a process's first `to_arrow`; `run` and each of its workers paid it for these
    bitmaps alone). The exported schema, batches and stream are released here, as the interface's
    consumer must."""
    n, k = frame.height, frame.width
    done = np.zeros(k, dtype=bool)
    if n == 0 or k == 0 or any(dt != pl.Boolean for dt in frame.dtypes):
        return done
    n_bytes = (n + 7) // 8
    capsule = frame.__arrow_c_stream__()
    stream = _ArrowStream.from_address(_capsule_pointer(capsule, b"arrow_array_stream"))
    batches = 0
    try:
        if not _boolean_struct(stream, k):  # exported as anything but a struct of k Arrow booleans
            return done
        while True:
            batch = _ArrowArray()
            if stream.get_next(ctypes.byref(stream), ctypes.byref(batch)) != 0:
                done[:] = False
                break
            if not batch.release:  # end of the stream
                break
            batches += 1
            try:
                if batches > 1:  # several batches: the caller packs every column
                    done[:] = False
                elif (batch.length == n and batch.offset == 0 and batch.null_count == 0
                      and batch.n_children == k):
                    for j in range(k):
                        at = _aligned_bits(batch.children[j].contents, n)
                        if at is not None:
                            data = np.frombuffer((ctypes.c_uint8 * n_bytes).from_address(at), dtype=np.uint8)
                            if invert:
                                np.invert(data, out=out[j, :n_bytes])
                            else:
                                out[j, :n_bytes] = data
                            done[j] = True
            finally:
                batch.release(ctypes.byref(batch))
    finally:
        if stream.release:
            stream.release(ctypes.byref(stream))
            stream.release = type(stream.release)()  # released: the capsule's destructor must not again
    return done


def _boolean_struct(stream: _ArrowStream, k: int) -> bool:
    """The stream's schema is a struct of k Arrow booleans (format "+s", each child "b")."""
    schema = _ArrowSchema()
    if stream.get_schema(ctypes.byref(stream), ctypes.byref(schema)) != 0:
        return False
    try:
        return (schema.format == b"+s" and schema.n_children == k
                and all(schema.children[j].contents.format == b"b" for j in range(k)))
    finally:
        if schema.release:
            schema.release(ctypes.byref(schema))


def pass_bitmaps(frame: pl.DataFrame) -> list[np.ndarray]:
    """Each Boolean column of a frame (no nulls) as an LSB-first bitmap (uint8, ceil(n/8) bytes; bits
    past the end are not defined): copied from polars' Arrow export (`read_boolean_columns`) when it
    can be, else packed from the values."""
    out = np.zeros((frame.width, (frame.height + 7) // 8), dtype=np.uint8)
    done = read_boolean_columns(frame, out)
    for j, col in enumerate(frame.get_columns()):
        if not done[j]:
            out[j] = np.packbits(col.fill_null(False).to_numpy().astype(bool), bitorder="little")
    return list(out)


def pass_bitmap(col) -> np.ndarray:
    """`pass_bitmaps` of one Series."""
    return pass_bitmaps(col.to_frame())[0]


def column_counts(words: np.ndarray, k: int, group: np.ndarray | None = None, groups: int = 1,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """(groups, k): rows of each group (`group` (n,) ints in [0, groups); None: one group) with bit j
    set, for the first k bits; int64, or with `weights` (n,) the float64 sums of the rows' weights
    (exact for integer weights whose sums stay below 2**53)."""
    n = words.shape[0]
    w = words_for(k)
    out = np.zeros((groups, w * WORD), dtype=np.int64 if weights is None else np.float64)
    if n == 0 or k == 0:
        return out[:, :k]
    if group is not None:
        sizes = np.bincount(group, weights=weights, minlength=groups)
    else:
        sizes = np.array([n if weights is None else weights.sum()])
    always = np.array([np.bitwise_and.reduce(words[:, c]) for c in range(w)], dtype=np.uint64)
    varies = np.array([np.bitwise_or.reduce(words[:, c]) for c in range(w)], dtype=np.uint64) & ~always
    base = None if group is None else group.astype(np.intp) * 256
    by_byte = np.ascontiguousarray(words).astype("<u8", copy=False).view(np.uint8)
    vary_bytes = varies.astype("<u8", copy=False).view(np.uint8)
    always_bits = np.unpackbits(always.astype("<u8", copy=False).view(np.uint8), bitorder="little")
    idx = np.empty(n, dtype=np.intp)  # one index buffer for every byte (no allocation per byte)
    for b in range(min(w * 8, (k + 7) // 8)):
        cols = slice(8 * b, 8 * b + 8)
        if vary_bytes[b] == 0:  # every row alike on these 8 bits
            out[:, cols] = sizes[:, None] * always_bits[cols][None, :]
            continue
        if base is None:
            idx[:] = by_byte[:, b]
        else:
            np.add(base, by_byte[:, b], out=idx)
        hist = np.bincount(idx, weights=weights, minlength=groups * 256).reshape(groups, 256)
        out[:, cols] = hist @ _BIT_TABLE
    return out[:, :k]


# -- column bitmaps: one bitmap of n bits per column ---------------------------------------------------

_T1, _T2, _T3 = np.uint64(0x00AA00AA00AA00AA), np.uint64(0x0000CCCC0000CCCC), np.uint64(0x00000000F0F0F0F0)


_CHUNK = 16_384
"""uint64 words per slice in `transpose8`: 128 KiB, so its 18 passes stay in cache."""


def transpose8(x: np.ndarray) -> np.ndarray:
    """Each uint64 of a 1-D contiguous array as an 8 x 8 bit matrix (byte m, bit t) transposed (byte t,
    bit m), in place: the three mask-shift-xor steps of Warren, Hacker's Delight (2nd ed., 2012),
    section 7-3, slice by slice."""
    if not x.flags.c_contiguous:
        raise ValueError("transpose8 works in place on a contiguous array")
    flat = x.reshape(-1)
    tmp = np.empty(min(_CHUNK, flat.size), dtype=np.uint64)
    for lo in range(0, flat.size, _CHUNK):
        v = flat[lo: lo + _CHUNK]
        t = tmp[: v.size]
        for mask, shift in ((_T1, np.uint64(7)), (_T2, np.uint64(14)), (_T3, np.uint64(28))):
            np.right_shift(v, shift, out=t)
            t ^= v
            t &= mask
            v ^= t
            t <<= shift
            v ^= t
    return x


def bitmap_bytes(n: int) -> int:
    """Bytes of an n-bit column bitmap held as whole uint64 words."""
    return 8 * ((n + WORD - 1) // WORD)


def column_bitmaps(matrix: np.ndarray) -> np.ndarray:
    """(k, bitmap_bytes(n)) uint8: the LSB-first bitmap of each column of an (n, k) bool matrix (bit r
    of column c's bitmap = matrix[r, c]; bits past n are 0). The rows are packed (one fast packbits
    along the short axis), then each 8 x 8 block of bits is transposed (`transpose8`): far cheaper
    than packing along the long axis, a strided pass per column."""
    matrix = np.asarray(matrix, dtype=bool)
    n, k = matrix.shape
    if not (n and k):
        return np.zeros((k, bitmap_bytes(n)), dtype=np.uint8)
    return column_bitmaps_of_rows(np.packbits(matrix, axis=1, bitorder="little"), k)


def column_bitmaps_of_rows(row_bytes: np.ndarray, k: int) -> np.ndarray:
    """`column_bitmaps` of a matrix already packed by rows: (n, >= ceil(k/8)) uint8, bit j of byte b of
    row r = column 8b+j (e.g. `pack_rows` words viewed as bytes)."""
    n = row_bytes.shape[0]
    g, m = (k + 7) // 8, bitmap_bytes(n)
    rows = np.zeros((m * 8, g), dtype=np.uint8)
    rows[:n] = row_bytes[:, :g]  # bits past column k become columns >= k, dropped below
    # block (column byte j, row byte r) as a uint64 whose byte t holds row 8r+t's bits of columns 8j..
    x = np.ascontiguousarray(rows.reshape(m, 8, g).transpose(2, 0, 1)).view("<u8")[..., 0]
    transpose8(x)  # now byte t holds column 8j+t's bits of rows 8r..8r+7
    return np.ascontiguousarray(x.view(np.uint8).reshape(g, m, 8).transpose(0, 2, 1)).reshape(g * 8, m)[:k]


def valid_bitmap(n: int) -> np.ndarray:
    """(bitmap_bytes(n),) uint8: the first n bits set."""
    out = np.zeros(bitmap_bytes(n), dtype=np.uint8)
    out[: n // 8] = 0xFF
    if n % 8:
        out[n // 8] = (1 << (n % 8)) - 1
    return out


def popcount(bitmap: np.ndarray) -> int:
    """Set bits of a bitmap of whole uint64 words (any shape)."""
    x = bitmap.view(np.uint64)
    if hasattr(np, "bitwise_count"):
        return int(np.bitwise_count(x).sum(dtype=np.int64))
    return int(_POP8[bitmap.view(np.uint8)].sum(dtype=np.int64))
