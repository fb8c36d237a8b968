"""Measured data: the CSV table (:func:`read_csv`) and the checks of arrays given in Python."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxmi.errors import FitError


class Data(NamedTuple):
    """Measured conductance, 1-D arrays of equal length N (float64).

    Attributes:
        T_K: temperature, kelvin (> 0).
        V_mV: bias voltage, millivolt (0 in linear response).
        G: total edge conductance in units of e^2/h.
        G_err: one standard deviation of G (e^2/h, > 0), or None.
    """

    T_K: np.ndarray
    V_mV: np.ndarray
    G: np.ndarray
    G_err: np.ndarray | None


CSV_COLUMNS = ("T", "V", "G", "G_err")


#: The unit of each column: a header cell may name it in brackets, ``T [K]``, and no other.
CSV_UNITS = {"T": "K", "V": "mV", "G": "e^2/h", "G_err": "e^2/h"}


_ALLOWED_COLUMNS = "T [K], V [mV], G [e^2/h], G_err [e^2/h]"


def _delimiter(lines: Sequence[str]) -> str:
    """The separator of a table, sniffed from its header line (the first line that is not
    blank, not only separators and not a ``#`` comment): ``;`` if it has a semicolon and no
    comma (a spreadsheet in a locale whose decimal mark is the comma), else ``,``."""
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#") or not text.strip(",; \t"):
            continue
        return ";" if ";" in text and "," not in text else ","
    return ","


def _column(path: str, line: int, cell: str) -> str:
    """The column a header cell names: ``G`` or ``G [e^2/h]`` -> "G"; a unit in brackets must
    be the column's (:data:`CSV_UNITS`; spaces inside the brackets are ignored)."""
    name, bracket, rest = cell.partition("[")
    name = name.strip()
    if name not in CSV_COLUMNS or (bracket and not rest.rstrip().endswith("]")):
        raise FitError(
            f"{path}: line {line}: unknown column {cell!r} (allowed: {_ALLOWED_COLUMNS})"
        )
    if bracket:
        unit = "".join(rest.rstrip()[:-1].split())
        want = CSV_UNITS[name]
        if unit != want:
            raise FitError(
                f"{path}: line {line}: column {cell!r}: {name} is read in {want}, not "
                f"{repr(unit) if unit else 'an empty unit'}; convert the values and write "
                f"{name} [{want}] (or {name})"
            )
    return name


def read_csv(path) -> Data:
    """Read a conductance table: a header, then one row per measurement.

    Columns (by header name, any order): ``T`` (kelvin, > 0), ``V`` (millivolt; optional, 0
    when absent), ``G`` (e^2/h), ``G_err`` (optional, one standard deviation, > 0). A header
    cell may carry its unit in brackets, ``T [K]``, ``V [mV]``, ``G [e^2/h]``,
    ``G_err [e^2/h]``, and only that unit (``T [mK]`` is refused: the values are not
    converted). Cells are separated by commas or, when the header line has semicolons and no
    comma, by semicolons; numbers use a decimal point either way (a decimal comma is not read).
    Blank lines and lines starting with ``#`` are skipped. The file is UTF-8 text (a
    byte-order mark is allowed).

    Raises:
        FitError: one line naming the file, the line number and the column, e.g.
            ``data.csv: line 7, column G: not a number: 'n/a'``; or the file cannot be read or
            is not UTF-8.
    """
    path = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise FitError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of "T"
    except UnicodeDecodeError as err:
        raise FitError(
            f"{path}: is not UTF-8 text (byte {err.start}); save the table as UTF-8 CSV"
        ) from None
    lines = text.splitlines()
    delimiter = _delimiter(lines)
    rows = [
        (i, row)
        for i, row in enumerate(csv.reader(lines, delimiter=delimiter), start=1)
        if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")
    ]
    if not rows:
        raise FitError(f"{path}: empty file: expected a header with columns T, G (and V, G_err)")
    header_line, cells = rows[0]
    cells = [c.strip() for c in cells]
    header = [_column(path, header_line, c) for c in cells]
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise FitError(f"{path}: line {header_line}: column {dup!r} appears twice")
    for required in ("T", "G"):
        if required not in header:
            raise FitError(
                f"{path}: missing column {required!r} (header: {', '.join(cells)}; need T [K] "
                "and G [e^2/h], optional V [mV] and G_err [e^2/h])"
            )
    body = rows[1:]
    if not body:
        raise FitError(f"{path}: no data rows after the header")
    cols = {h: np.empty(len(body)) for h in header}
    for k, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise FitError(
                f"{path}: line {line}: expected {len(header)} cells ({', '.join(header)}), "
                f"got {len(row)}"
            )
        for h, cell in zip(header, row, strict=True):
            try:
                x = float(cell)
            except ValueError:
                hint = ""
                if delimiter == ";" and "," in cell:
                    hint = (
                        " (the file is separated by ';': a decimal comma is not read; write "
                        "numbers with a decimal point)"
                    )
                raise FitError(
                    f"{path}: line {line}, column {h}: not a number: {cell.strip()!r}{hint}"
                ) from None
            if not math.isfinite(x):
                raise FitError(
                    f"{path}: line {line}, column {h}: must be finite, got {cell.strip()!r}"
                )
            if h == "T" and not x > 0:
                raise FitError(
                    f"{path}: line {line}, column T: temperature must be > 0 K, got {x:g}"
                )
            if h == "G_err" and not x > 0:
                raise FitError(f"{path}: line {line}, column G_err: must be > 0, got {x:g}")
            cols[h][k] = x
    V = cols.get("V", np.zeros(len(body)))
    return Data(cols["T"], V, cols["G"], cols.get("G_err"))


def _check_data(T_K, V_mV, G, G_err) -> Data:
    arrays = {}
    for name, x in (("T_K", T_K), ("V_mV", V_mV), ("G", G), ("G_err", G_err)):
        if x is None:
            arrays[name] = None
            continue
        try:
            a = np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            raise FitError(f"{name} must be an array of numbers") from None
        arrays[name] = a
    G = arrays["G"]
    if G.ndim != 1:
        raise FitError(f"G must be one-dimensional, got shape {G.shape}")
    n = G.shape[0]
    if arrays["V_mV"] is None:
        arrays["V_mV"] = np.zeros(n)
    for name in ("T_K", "V_mV", "G_err"):
        a = arrays[name]
        if a is None:
            continue
        if a.ndim == 0:
            a = arrays[name] = np.full(n, float(a))
        if a.shape != (n,):
            raise FitError(f"{name} must have the shape of G, ({n},), got {a.shape}")
    for name, a in arrays.items():
        if a is not None and not np.isfinite(a).all():
            i = int(np.argmin(np.isfinite(a)))
            raise FitError(f"{name}[{i}] must be finite, got {a[i]}")
    if not (arrays["T_K"] > 0).all():
        i = int(np.argmin(arrays["T_K"] > 0))
        raise FitError(f"T_K[{i}] must be > 0 (kelvin), got {arrays['T_K'][i]}")
    if arrays["G_err"] is not None and not (arrays["G_err"] > 0).all():
        i = int(np.argmin(arrays["G_err"] > 0))
        raise FitError(f"G_err[{i}] must be > 0, got {arrays['G_err'][i]}")
    return Data(arrays["T_K"], arrays["V_mV"], G, arrays["G_err"])
