"""Load the training table: CSV (sniffed delimiter, any compression) or Parquet, from any fsspec
URI."""

from __future__ import annotations

import csv
import hashlib
import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Sequence
from typing import Optional

import fsspec
import pandas as pd
import pyarrow
import pyarrow.dataset
from prefect import task

from featurizers._numbers import WHOLE_NUMBER
from tasks.errors import AutoMLInputError, nearest_names, store_errors

__all__ = ["FRAME_DATA", "check_named_columns", "check_source", "data_fingerprint", "frame_table",
           "load_table", "load_table_task", "read_header", "select_columns"]

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")
_SNIFF_BYTES = 64 * 1024
_COMMA_DECIMAL = re.compile(r"^\s*[+-]?\d*,\d+\s*$")
_NOT_THOUSANDS = re.compile(r",(?:\d{1,2}|\d{4,})\s*$")  # 1,234 may be a thousand and more
FRAME_DATA = "<DataFrame>"  # the settings' data when a Python caller gave a DataFrame


def _base_name(uri: str) -> str:
    name = uri.lower().rstrip("/")
    for suffix in _COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def _sniff_delimiter(sample: str, uri: str) -> str:
    if _base_name(uri).endswith(".tsv"):
        return "\t"
    lines = sample.splitlines()
    lines = lines[:-1] if len(lines) > 1 else lines  # the last line may be cut mid-row
    try:
        return csv.Sniffer().sniff("\n".join(lines[:200]), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _comma_decimal_columns(frame: pd.DataFrame) -> list[str]:
    """The text columns holding numbers written with a decimal comma (``1,5``) and whole ones
    only, with at least one that cannot be a thousands separator (``1,234``); none when a number
    column has fractions, which then use a point."""
    if any(pd.api.types.is_float_dtype(frame[c]) and (frame[c].dropna() % 1 != 0).any()
           for c in frame.columns):
        return []
    found = []
    for column in frame.columns:
        values = frame[column].dropna()
        if pd.api.types.is_numeric_dtype(values) or not len(values):
            continue
        text = values.astype(str)
        if not text.str.contains(",", regex=False).any() or not values.map(
                lambda v: isinstance(v, str)).all():
            continue
        comma = text.str.match(_COMMA_DECIMAL)
        if ((comma | text.str.match(WHOLE_NUMBER)).all()
                and text[comma].str.contains(_NOT_THOUSANDS).any()):
            found.append(column)
    return found


def _empty(uri: str) -> AutoMLInputError:
    return AutoMLInputError(f"data file {uri!r} is empty; give a table with a header row")


def _first_encoding(raw: bytes) -> str:
    return "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"


def _read_csv(uri: str) -> pd.DataFrame:
    with fsspec.open(uri, "rb", compression="infer") as handle:
        raw = handle.read()
    if not raw.strip():
        raise _empty(uri)
    encoding = _first_encoding(raw)
    text_sample = raw[:_SNIFF_BYTES].decode(encoding, errors="replace")
    delimiter = _sniff_delimiter(text_sample, uri)
    try:
        try:
            frame = pd.read_csv(io.BytesIO(raw), sep=delimiter, encoding=encoding,
                                low_memory=False)
        except UnicodeDecodeError:
            encoding = "latin-1"
            frame = pd.read_csv(io.BytesIO(raw), sep=delimiter, encoding=encoding,
                                low_memory=False)
    except pd.errors.ParserError as exc:
        raise AutoMLInputError(
            f"data file {uri!r} is not a readable table ({str(exc).splitlines()[0]}); "
            "check its delimiter and quoting"
        ) from None
    if delimiter != ",":  # then 1,5 is one and a half
        for column in _comma_decimal_columns(frame):
            frame[column] = pd.to_numeric(frame[column].str.strip().str.replace(
                ",", ".", regex=False))
    # pandas renames a repeated header ("a", "a" -> "a", "a.1"): a column the user never had.
    header = pd.read_csv(io.BytesIO(raw), sep=delimiter, encoding=encoding, header=None,
                         nrows=1, dtype=str).iloc[0]
    _check_unique_names([str(c) for c in header.dropna()], uri)  # empty ones become Unnamed
    return frame


def _check_unique_names(names: list[str], uri: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            source = "the DataFrame given as data" if uri == FRAME_DATA else f"data {uri!r}"
            raise AutoMLInputError(f"{source} has two columns named {name!r}; rename or drop "
                                   "one of them")
        seen.add(name)


def frame_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A DataFrame a Python caller gave as ``data``, checked as a file's table is: its column
    names as text (as a CSV's are: ``target="6"`` names the column ``6``), none twice.

    Raises
    ------
    AutoMLInputError
        Naming a repeated column, or saying the DataFrame has no columns.
    """
    names = [str(c) for c in frame.columns]
    _check_unique_names(names, FRAME_DATA)
    if not names:
        raise AutoMLInputError("data (a DataFrame) has no columns; give a table with the "
                               "target and feature columns")
    return frame.set_axis(names, axis=1)


# A file that is not what its name says, or is cut short: a truncated .gz raises EOFError, a
# corrupt one zlib.error, neither of which is transient.
_UNREADABLE = (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


def check_source(uri: str) -> bool:
    """Check that ``uri`` names a table to read, without reading it; return whether it is a
    folder (of Parquet files).

    Raises
    ------
    AutoMLInputError
        When it does not exist, its filesystem is unknown or not installed, its store refuses
        (credentials, access; see :func:`tasks.errors.store_errors`), or it is a folder without
        Parquet files.
    """
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        with store_errors(f"data {uri!r} cannot be read"):
            exists = fs.exists(path)
    except AutoMLInputError:
        raise
    except (ImportError, ValueError) as exc:
        raise AutoMLInputError(f"cannot open data {uri!r}: {exc}") from None
    if not exists:
        raise AutoMLInputError(f"data file {uri!r} does not exist; check the path or URI")
    folder = fs.isdir(path)
    if folder and not any(p.endswith(_PARQUET_SUFFIXES) for p in fs.find(path)):
        raise AutoMLInputError(
            f"data {uri!r} is a folder without Parquet files; give the path of one CSV or "
            "Parquet file, or a folder of Parquet files")
    return bool(folder)


def read_header(uri: str) -> Optional[list[str]]:
    """The column names of a table as :func:`load_table` would name them, read from the first
    bytes of a CSV or the schema of Parquet, without reading the rows.

    Returns
    -------
    list of str or None
        None when the names cannot be known so cheaply (a header longer than the bytes read, a
        non-ASCII header whose encoding the later rows decide, a file that does not read): the
        full read then gives the answer.

    Raises
    ------
    AutoMLInputError
        When the file is empty.
    """
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        if fs.isdir(path) or _base_name(uri).endswith(_PARQUET_SUFFIXES):
            return [str(name) for name in pyarrow.dataset.dataset(
                path, filesystem=fs, format="parquet", partitioning="hive").schema.names]
        with fsspec.open(uri, "rb", compression="infer") as handle:
            raw = b""  # a stream (HTTP without a length) may return less before its end
            while len(raw) < _SNIFF_BYTES and (chunk := handle.read(_SNIFF_BYTES - len(raw))):
                raw += chunk
    except (*_UNREADABLE, pyarrow.ArrowException):
        return None
    whole = len(raw) < _SNIFF_BYTES
    if whole and not raw.strip():
        raise _empty(uri)
    return _header_names(raw, whole, uri)


def _header_names(raw: bytes, whole: bool, uri: str) -> Optional[list[str]]:
    encoding = _first_encoding(raw)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        if whole or exc.reason not in ("unexpected end of data", "truncated data"):  # not cut
            encoding, text = "latin-1", raw.decode("latin-1")
        else:
            text = raw[:exc.start].decode(encoding)
    # As _read_csv sniffs it, whichever encoding then reads the names.
    delimiter = _sniff_delimiter(raw.decode(_first_encoding(raw), errors="replace"), uri)
    lines = text.splitlines(keepends=True)
    if not whole:
        lines = lines[:-1]  # the last line may be cut mid-row
        if not lines or (encoding != "latin-1" and not lines[0].isascii()):
            return None  # a bad byte further on would have the whole file read as latin-1
    try:
        names = pd.read_csv(io.StringIO("".join(lines)), sep=delimiter, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    return [str(name) for name in names]


def check_named_columns(columns: Sequence[str], names: Sequence[str], target: str) -> None:
    """Check that every one of ``names`` is among ``columns``.

    Raises
    ------
    AutoMLInputError
        Naming the first missing one (as the target column when it is ``target``), with the
        nearest existing names.
    """
    for name in names:
        if name not in columns:
            kind = "target column" if name == target else "column"
            raise AutoMLInputError(
                f"{kind} {name!r} is not in the data." + nearest_names(name, columns))


def load_table(uri: str) -> pd.DataFrame:
    """Read a CSV/TSV (optionally compressed) or Parquet table from a path or fsspec URI.

    Parameters
    ----------
    uri : str
        Local path or any fsspec URI (``s3://``, ``gcs://``, ``memory://``, ``https://`` ...).
        ``.parquet``/``.pq`` are read with pyarrow; anything else as delimited text whose delimiter
        is sniffed (``.tsv`` is tab-separated). Compression is inferred from the suffix.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    AutoMLInputError
        When the file does not exist, is empty, or is not a table.
    """
    folder = check_source(uri)
    try:
        if folder:
            frame = _parquet_folder(uri)
        elif _base_name(uri).endswith(_PARQUET_SUFFIXES):
            frame = pd.read_parquet(uri)
        else:
            frame = _read_csv(uri)
    except AutoMLInputError:
        raise
    except _UNREADABLE as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AutoMLInputError(f"cannot read data {uri!r}: {first}") from None
    frame.columns = [str(c) for c in frame.columns]
    _check_unique_names(list(frame.columns), uri)
    if frame.shape[1] == 0:
        raise AutoMLInputError(f"data file {uri!r} has no columns; give a table with a header row")
    return frame


def _parquet_folder(uri: str) -> pd.DataFrame:
    """A folder of Parquet files (a Spark or Dask export, ``part-*.parquet``) as one table;
    partition folders (``year=2024/``) become columns of their plain values."""
    frame = pd.read_parquet(uri)
    for column in frame.columns[frame.dtypes == "category"]:
        frame[column] = frame[column].astype(frame[column].cat.categories.dtype)
    return frame


def select_columns(
    frame: pd.DataFrame, target: str, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> pd.DataFrame:
    """Keep the target plus ``include`` (all when empty) minus ``exclude``, checking every name.

    Raises
    ------
    AutoMLInputError
        Naming a column that does not exist, with the nearest existing names.
    """
    check_named_columns(list(frame.columns), [target, *include, *exclude], target)
    keep = list(include) if include else [c for c in frame.columns if c != target]
    keep = [c for c in keep if c not in set(exclude) and c != target]
    return frame[[*keep, target]]


def data_fingerprint(frame: pd.DataFrame) -> str:
    """A stable sha256 of a table's columns, dtypes and values (for caching and the manifest)."""
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _retry_unless_input_error(task: object, task_run: object, state: object) -> bool:
    """Retry transient I/O failures, never a bad path or a bad file."""
    try:
        state.result()  # type: ignore[attr-defined]
    except AutoMLInputError:
        return False
    except Exception:  # noqa: BLE001 - any other failure may be transient
        return True
    return False


@task(name="load", retries=2, retry_delay_seconds=2, retry_condition_fn=_retry_unless_input_error)
def load_table_task(uri: str) -> pd.DataFrame:
    """Load the training table (retried: remote storage can fail transiently)."""
    return load_table(uri)
