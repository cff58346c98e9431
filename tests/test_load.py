"""Loading: delimiters, compression, Parquet, fsspec URIs, column selection and clear errors."""

from __future__ import annotations

import gzip
import re

import fsspec
import pandas as pd
import pytest

from tasks.errors import AutoMLInputError
from tasks.load import data_fingerprint, load_table, read_header, select_columns

FRAME = pd.DataFrame({"a b": [1, 2, 3], "ünï": ["x", "y", "z"], "y": [0.5, 1.5, 2.5]})


@pytest.mark.parametrize(("name", "sep"), [("t.csv", ","), ("t.csv", ";"), ("t.tsv", "\t"),
                                           ("t.txt", "|")])
def test_delimiters_are_sniffed(tmp_path, name, sep):
    path = tmp_path / name
    FRAME.to_csv(path, sep=sep, index=False)
    pd.testing.assert_frame_equal(load_table(str(path)), FRAME)


def test_decimal_commas_are_read_as_numbers_where_the_delimiter_is_not_a_comma(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("größe;gewicht;stadt;notiz\n1,5;70;Köln;a,b\n-2,25;;Bonn;c\n3;81,5;Köln;\n",
                    encoding="utf-8")
    frame = load_table(str(path))
    assert frame["größe"].tolist() == [1.5, -2.25, 3.0]
    assert frame["gewicht"].tolist()[::2] == [70.0, 81.5] and frame["gewicht"].isna()[1]
    assert frame["notiz"].tolist()[:2] == ["a,b", "c"]  # text stays text
    mixed = tmp_path / "mixed.csv"  # a decimal point elsewhere: "1,5" is not a number then
    mixed.write_text("a;b\n1,5;0.5\n2,5;1.5\n", encoding="utf-8")
    assert load_table(str(mixed))["a"].tolist() == ["1,5", "2,5"]
    # Only three digits after every comma: thousands, maybe; left as text. Whole numbers
    # written with a point stay numbers beside decimal commas.
    other = tmp_path / "other.csv"
    other.write_text("amount;rate;count\n1,234;0,5;1.0\n12,500;1,25;2.0\n950;2;3.0\n",
                     encoding="utf-8")
    frame = load_table(str(other))
    assert frame["amount"].tolist() == ["1,234", "12,500", "950"]
    assert frame["rate"].tolist() == [0.5, 1.25, 2.0] and frame["count"].tolist() == [1, 2, 3]


def test_gzip_and_parquet(tmp_path):
    gz = tmp_path / "t.tsv.gz"
    with gzip.open(gz, "wt") as handle:
        FRAME.to_csv(handle, sep="\t", index=False)
    pd.testing.assert_frame_equal(load_table(str(gz)), FRAME)
    pq = tmp_path / "t.parquet"
    FRAME.to_parquet(pq)
    pd.testing.assert_frame_equal(load_table(str(pq)), FRAME)


def test_a_table_over_http(tmp_path):
    """http:// URIs needed aiohttp, which nothing installed: 'HTTPFileSystem requires
    "requests" and "aiohttp" to be installed'."""
    import functools
    import http.server
    import threading

    pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}).to_csv(tmp_path / "t.csv", index=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert load_table(f"{base}/t.csv").to_dict("list") == {"x": [1, 2, 3],
                                                               "y": ["a", "b", "c"]}
        with pytest.raises(AutoMLInputError, match=r"^data file 'http://.*/nope.csv' does not "):
            load_table(f"{base}/nope.csv")
    finally:
        server.shutdown()


def test_the_header_of_a_stream_without_a_length_is_read_whole():
    """An HTTP answer without Content-Length is a stream whose read(n) returns what has come:
    the header was cut at its first part, and the CLI refused a column that was there."""
    import http.server
    import threading
    import time

    class Slow(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the end of the body is the end of the connection

        def do_GET(self):  # noqa: N802 - the handler's name in http.server
            self.send_response(200)
            self.end_headers()
            for part in (b"first_column,sec", b"ond_column\n", b"1,2\n3,4\n"):
                self.wfile.write(part)
                self.wfile.flush()
                time.sleep(0.3)

        def do_HEAD(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}/t.csv"
        assert read_header(uri) == ["first_column", "second_column"]
    finally:
        server.shutdown()


def test_fsspec_uri():
    with fsspec.open("memory://bucket/t.csv", "w") as handle:
        FRAME.to_csv(handle, index=False)
    pd.testing.assert_frame_equal(load_table("memory://bucket/t.csv"), FRAME)


@pytest.mark.parametrize(("content", "match"), [(None, "does not exist"), ("", "is empty")])
def test_missing_and_empty_files(tmp_path, content, match):
    path = tmp_path / "t.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(AutoMLInputError, match=match):
        load_table(str(path))


@pytest.mark.parametrize("name", ["cut.csv.gz", "garbage.csv.gz", "cut.csv.xz", "bad.csv.zip",
                                  "cut.csv.bz2"])
def test_a_truncated_or_corrupt_compressed_file_is_one_line_naming_it(tmp_path, name):
    """A cut .csv.gz stopped the run with 'run failed: EOFError: Compressed file ended ...',
    after two retries, naming no file; a corrupt one with a zlib error."""
    import bz2
    import lzma

    text = ("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(5000))).encode()
    whole = {"gz": gzip.compress, "xz": lzma.compress, "bz2": bz2.compress,
             "zip": lambda b: b"PK\x03\x04" + b[:100]}[name.rsplit(".", 1)[1]](text)
    path = tmp_path / name
    path.write_bytes(whole[:len(whole) // 2] if name.startswith("cut") else
                     whole[:10] + bytes(range(256)) * 4 if name.startswith("garbage") else whole)
    with pytest.raises(AutoMLInputError, match=rf"^cannot read data '{re.escape(str(path))}': "):
        load_table(str(path))


def test_a_folder_without_parquet_files_is_refused(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(AutoMLInputError, match="is a folder without Parquet files; give the path "
                       "of one CSV or Parquet file, or a folder of Parquet files"):
        load_table(str(tmp_path))


def test_a_folder_of_parquet_files_is_one_table(tmp_path):
    """A Spark or Dask export (part files, partition folders, a _SUCCESS marker) was refused."""
    for year in (2023, 2024):
        (tmp_path / f"year={year}").mkdir()
        pd.DataFrame({"x": [1.5, 2.5], "label": ["a", "b"]}).to_parquet(
            tmp_path / f"year={year}" / "part-00000.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    for uri in (str(tmp_path), f"file://{tmp_path}"):
        frame = load_table(uri)
        assert sorted(read_header(uri)) == sorted(frame.columns)
        assert frame.sort_values(["year", "x"]).to_dict("list") == {
            "x": [1.5, 2.5, 1.5, 2.5], "label": ["a", "b", "a", "b"],
            "year": [2023, 2023, 2024, 2024]}


def test_the_header_alone_names_the_columns_as_the_full_read_does(tmp_path):
    """The command line checks the named columns from the header before a flow run starts."""
    tables = {"t.csv": lambda p: FRAME.to_csv(p, sep=";", index=False),
              "t.tsv.gz": lambda p: FRAME.to_csv(p, sep="\t", index=False),
              "t.parquet": FRAME.to_parquet,
              "bom.csv": lambda p: FRAME.to_csv(p, index=False, encoding="utf-8-sig"),
              "latin.csv": lambda p: FRAME.to_csv(p, index=False, encoding="latin-1")}
    for name, write in tables.items():
        write(tmp_path / name)
        uri = str(tmp_path / name)
        assert read_header(uri) == list(load_table(uri).columns), name
    # Named as pandas names them; the full read then says which name is repeated.
    (tmp_path / "repeated.csv").write_text("a,a,,y\n1,2,3,4\n")
    assert read_header(str(tmp_path / "repeated.csv")) == ["a", "a.1", "Unnamed: 2", "y"]
    many = tmp_path / "many.csv"  # the header is in the first bytes, the rows go on
    pd.DataFrame({"id": range(20_000), "y": 0.5}).to_csv(many, index=False)
    assert read_header(str(many)) == ["id", "y"]
    # Beyond those bytes a latin-1 byte would have the whole file read as latin-1: an accented
    # header is left to the full read.
    pd.DataFrame({"ünï": range(20_000)}).to_csv(many, index=False)
    assert read_header(str(many)) is None
    (tmp_path / "wide.csv").write_text(",".join(f"c{i}" for i in range(20_000)) + "\n1\n")
    assert read_header(str(tmp_path / "wide.csv")) is None  # longer than the bytes read
    # UTF-16 whose first 64 KiB end inside a character (two code units): read as latin-1, its
    # header was "a\x00,\x00b" and every column named missing.
    text = "a,b\n" + "1,2\n" * 8190 + "x,\U0001F600\n"
    assert len(("a,b\n" + "1,2\n" * 8190 + "x,").encode("utf-16")) == 65534
    (tmp_path / "wide16.csv").write_text(text, encoding="utf-16")
    assert read_header(str(tmp_path / "wide16.csv")) == ["a", "b"]
    (tmp_path / "empty.csv").write_text(" \n")
    with pytest.raises(AutoMLInputError, match="is empty; give a table with a header row"):
        read_header(str(tmp_path / "empty.csv"))
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n" * 100)[:20])
    assert read_header(str(tmp_path / "cut.csv.gz")) is None  # the full read says why


def test_select_columns_include_exclude_and_nearest_names():
    assert list(select_columns(FRAME, "y", include=["a b"])) == ["a b", "y"]
    assert list(select_columns(FRAME, "y", exclude=["a b"])) == ["ünï", "y"]
    with pytest.raises(AutoMLInputError, match=r"target column 'Y ' .*Did you mean 'y'"):
        select_columns(FRAME, "Y ")
    with pytest.raises(AutoMLInputError, match="column 'zz' is not in the data"):
        select_columns(FRAME, "y", exclude=["zz"])


def test_fingerprint_changes_with_values_only():
    assert data_fingerprint(FRAME) == data_fingerprint(FRAME.copy())
    changed = FRAME.copy()
    changed.loc[0, "y"] = 9.0
    assert data_fingerprint(changed) != data_fingerprint(FRAME)


def test_a_store_failure_a_retry_would_meet_again_is_one_line_and_one_that_may_pass_is_not():
    """Every failure was one line, so the load task's retries never met a connection reset."""
    from tasks.errors import store_errors

    class NoCredentialsError(Exception):  # named as botocore's, which is not a dependency
        pass

    for lasting in (NoCredentialsError("Unable to locate credentials"),
                    PermissionError("Forbidden"),
                    FileNotFoundError("The specified bucket does not exist")):
        with pytest.raises(AutoMLInputError, match=(
                rf"^data 's3://b/t.csv' cannot be read \({type(lasting).__name__}: .+\); check "
                r"the URI, that its bucket exists, and the credentials$")):
            with store_errors("data 's3://b/t.csv' cannot be read"):
                raise lasting
    for passing in (ConnectionResetError("reset by peer"), TimeoutError("read timed out"),
                    OSError(5, "Service Unavailable")):
        with pytest.raises(type(passing)):
            with store_errors("data 's3://b/t.csv' cannot be read"):
                raise passing
