"""Output files other than sweep files: pictures (``jaxmi plot``, ``jaxmi figures``,
``jaxmi fit --plot``) and fit results (``jaxmi fit -o``).

One rule, :func:`check_output`, decides whether a path may be written; the commands call it for
every output before the work starts (and the writers call it again just before writing):

* the output's directory exists, is a directory and is writable; the output is not a directory;
* a picture's extension names a format matplotlib writes (:func:`picture_formats`);
* an existing file is replaced only if jaxmi wrote it (:func:`written_by_jaxmi`): a picture
  carrying jaxmi's stamp (:func:`save_figure` writes ``jaxmi <version>`` as the PNG
  ``Software`` text, the PDF, SVG, EPS or PS ``Creator``, the EXIF Software tag of JPEG, TIFF,
  WebP and AVIF; GIF, raw, rgba and pgf hold none), or a JSON document with
  ``"jaxmi_format": "jaxmi-fit/1"``; anything else only with ``overwrite=True``
  (``--overwrite``).

Sweep files have their own rule (:mod:`jaxmi.sweep.store`: resume, or refuse). Nothing here
imports h5py or JAX; matplotlib and Pillow only inside the functions that need them.
"""

from __future__ import annotations

import gzip
import json
import os
import re

from jaxmi.errors import JaxmiError, StoreError

PICTURE = "picture"
FIT = "fit"
BENCH = "bench"
#: The ``jaxmi_format`` of a fit result (:meth:`jaxmi.fitting.FitResult.to_json`).
FIT_FORMAT = "jaxmi-fit/1"
#: The ``jaxmi_format`` of a benchmark result (``jaxmi bench --json``).
BENCH_FORMAT = "jaxmi-bench/1"
#: JSON outputs: kind -> (the prefix of their ``jaxmi_format``, what they are called).
_JSON_KINDS = {
    FIT: ("jaxmi-fit/", "a jaxmi fit result"),
    BENCH: ("jaxmi-bench/", "a jaxmi bench result"),
}
MISSING_MATPLOTLIB = "plotting needs matplotlib, which is not installed: pip install matplotlib"
#: How a picture carries the stamp, by format: in matplotlib's ``metadata`` under this key, ...
METADATA_KEYS = {"png": "Software", **dict.fromkeys(("pdf", "svg", "svgz", "eps", "ps"), "Creator")}
#: ... or as the EXIF Software tag (written and read by Pillow, which matplotlib requires). GIF,
#: raw, rgba and pgf files hold no stamp: an existing one is replaced only with overwrite.
EXIF_FORMATS = ("jpg", "jpeg", "tif", "tiff", "webp", "avif")
_EXIF_SOFTWARE = 0x0131
_SVG_STAMP = re.compile(rb"<dc:creator>\s*<cc:Agent>\s*<dc:title>jaxmi ")
_PEEK = 1 << 16  # bytes read from a vector picture's head (or a PDF's tail) to find the stamp
_MAX_FIT_JSON = 1 << 24  # a larger "fit result" is not one of jaxmi's


def stamp() -> str:
    """What jaxmi writes into its pictures' metadata: ``jaxmi <version>``."""
    from jaxmi import __version__

    return f"jaxmi {__version__}"


def picture_formats() -> tuple[str, ...]:
    """The file extensions matplotlib writes (lower case, sorted).

    Raises:
        JaxmiError: matplotlib is not installed (with the install command).
    """
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise JaxmiError(MISSING_MATPLOTLIB) from None
    return tuple(sorted(FigureCanvasBase.get_supported_filetypes()))


def _extension(path: str) -> str:
    return os.path.splitext(path)[1][1:].lower()


def _check_picture_format(path: str) -> None:
    formats = picture_formats()
    ext = _extension(path)
    if not ext:
        raise StoreError(
            f"{path}: has no extension to tell the picture's format (allowed: {', '.join(formats)})"
        )
    if ext not in formats:
        raise StoreError(
            f"{path}: matplotlib cannot write .{ext} pictures (allowed: {', '.join(formats)})"
        )


def _read(path: str, size: int, *, tail: bool = False) -> bytes:
    with open(path, "rb") as f:
        if tail:
            f.seek(max(0, os.fstat(f.fileno()).st_size - size))
        return f.read(size)


def _picture_stamped(path: str) -> bool:
    ext = _extension(path)
    if ext == "png" or ext in EXIF_FORMATS:
        from PIL import Image

        with Image.open(path) as im:
            value = im.info.get("Software") if ext == "png" else im.getexif().get(_EXIF_SOFTWARE)
        return isinstance(value, str) and value.startswith("jaxmi ")
    if ext == "pdf":
        return b"/Creator (jaxmi " in _read(path, _PEEK, tail=True)
    if ext in ("svg", "svgz"):
        opener = gzip.open if ext == "svgz" else open
        with opener(path, "rb") as f:
            return _SVG_STAMP.search(f.read(_PEEK)) is not None
    if ext in ("eps", "ps"):
        return b"\n%%Creator: jaxmi " in _read(path, 4096)
    return False


def _json_result(path: str, prefix: str) -> bool:
    if os.path.getsize(path) > _MAX_FIT_JSON:
        return False
    try:
        doc = json.loads(_read(path, _MAX_FIT_JSON).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(doc, dict) and str(doc.get("jaxmi_format", "")).startswith(prefix)


def written_by_jaxmi(path: str | os.PathLike, kind: str) -> bool:
    """Whether the existing file ``path`` is a ``kind`` (:data:`PICTURE`, :data:`FIT` or
    :data:`BENCH`) output that jaxmi wrote: a picture carrying :func:`stamp` (PNG, PDF, SVG,
    EPS, PS), or a JSON document whose ``jaxmi_format`` is jaxmi's fit (bench) format. A file
    that cannot be read is not."""
    path = os.fspath(path)
    if kind in _JSON_KINDS:
        try:
            return _json_result(path, _JSON_KINDS[kind][0])
        except OSError:
            return False
    try:
        return _picture_stamped(path)
    except Exception:  # unreadable or malformed (Pillow may raise almost anything): not ours
        return False


def _not_ours(path: str, kind: str) -> str:
    if kind in _JSON_KINDS:
        return f"is not {_JSON_KINDS[kind][1]}"
    ext = _extension(path)
    if ext in METADATA_KEYS or ext in EXIF_FORMATS:
        return "carries no jaxmi stamp"
    return f"may not be jaxmi's (.{ext} pictures hold no jaxmi stamp)"


def check_output(
    path: str | os.PathLike, kind: str, *, overwrite: bool = False, option: str = "-o"
) -> str:
    """Check that jaxmi may write the output ``path`` (the rule of this module's docstring).

    Args:
        path: the output file.
        kind: :data:`PICTURE` (format by extension, any matplotlib writes), :data:`FIT` (a
            JSON fit result) or :data:`BENCH` (a JSON benchmark result).
        overwrite: replace an existing file even if jaxmi did not write it.
        option: the command-line option that names ``path`` (for the message).

    Returns:
        ``path`` as a string.

    Raises:
        StoreError: one line naming the path: its directory is missing, not a directory or not
            writable; it is a directory; a picture's extension is not a format matplotlib
            writes (the allowed ones listed); or it exists and jaxmi did not write it (without
            ``overwrite``).
        JaxmiError: a picture, and matplotlib is not installed.
    """
    if kind != PICTURE and kind not in _JSON_KINDS:
        raise ValueError(f"kind must be {PICTURE!r}, {FIT!r} or {BENCH!r}, got {kind!r}")
    path = os.fspath(path)
    _check_place(path)
    if kind == PICTURE:
        _check_picture_format(path)
    if os.path.exists(path) and not overwrite and not written_by_jaxmi(path, kind):
        raise StoreError(
            f"{path}: exists and {_not_ours(path, kind)}; refusing to overwrite it (use "
            f"--overwrite to replace it, or {option} elsewhere)"
        )
    return path


def check_directory(path: str) -> None:
    """The output's directory exists and is a directory; the output is not a directory (every
    output of jaxmi, sweep files too).

    Raises:
        StoreError: one line naming the path and what is wrong.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(directory):
        raise StoreError(f"{path}: the output directory {directory} does not exist")
    if not os.path.isdir(directory):
        raise StoreError(f"{path}: {directory} is not a directory")
    if os.path.isdir(path):
        raise StoreError(f"{path}: is a directory, not an output file")


def _check_place(path: str) -> None:
    """:func:`check_directory`, and the directory is writable, and so is the output if it
    exists."""
    check_directory(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreError(f"{path}: cannot create the output file: {directory} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise StoreError(f"{path}: exists and is not writable")


def save_figure(
    fig, path: str | os.PathLike, *, dpi: int, overwrite: bool = False, option: str = "-o"
) -> str:
    """Write the matplotlib figure ``fig`` to ``path`` (format by extension) with jaxmi's stamp
    in its metadata where the format holds one (:data:`METADATA_KEYS`, :data:`EXIF_FORMATS`),
    after :func:`check_output`. Returns ``path`` as a string.

    Raises:
        StoreError: :func:`check_output` refuses the path, or writing fails (naming the path).
    """
    path = check_output(path, PICTURE, overwrite=overwrite, option=option)
    fmt = _extension(path)
    extra = {}
    if fmt in METADATA_KEYS:
        extra = {"metadata": {METADATA_KEYS[fmt]: stamp()}}
    elif fmt in EXIF_FORMATS:
        from PIL import Image

        exif = Image.Exif()
        exif[_EXIF_SOFTWARE] = stamp()
        extra = {"pil_kwargs": {"exif": exif}}
    try:
        fig.savefig(path, dpi=dpi, format=fmt, **extra)
    except OSError as err:
        raise StoreError(f"{path}: cannot write the picture: {err.strerror or err}") from None
    return path
