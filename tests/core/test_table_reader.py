"""core/table_reader.py: the robust reader under every domain's files. Missing, empty,
gzip-corrupt, NUL-byte and wrongly encoded files (the row and the byte named); delimiter
detection and its message; parse errors with row numbers; blank lines, short rows and
missing values sent to the raise-or-count Sink; the numeric fast path; parse_numbers."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
from pandas.api.types import is_float_dtype

from fewshot_apps.core.table_reader import (
    ReadReport,
    Sink,
    delimiter_error,
    delimiter_name,
    guess_delimiter,
    parse_numbers,
    parser_error,
    read_table,
    read_text,
)
from fewshot_apps.errors import DataError

LAYOUT = "a CSV with header user,item,rating"


def write(tmp_path: Path, text: str | bytes, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def table(path, errors="raise", report=None, sep=",", columns=None, all_numeric=False,
          required=("user", "item", "rating")):
    report = report if report is not None else ReadReport()
    return read_table(path, "ratings", sep=sep, columns=columns, required=required,
                      encoding="utf-8", layout=LAYOUT, report=report, sink=Sink(report, errors),
                      all_numeric=all_numeric)


# --------------------------------------------------------------------------- read_text


def test_missing_file_says_what_was_expected(tmp_path):
    with pytest.raises(DataError, match=r"t\.csv: no such file \(expected a ratings CSV\)$"):
        read_text(tmp_path / "t.csv", layout="a ratings CSV")
    with pytest.raises(DataError, match=r"t\.csv: no such file$"):
        read_text(tmp_path / "t.csv")
    with pytest.raises(DataError, match="a folder, not a file"):
        read_text(tmp_path)  # a folder is no file, and is called a folder


@pytest.mark.parametrize("content", [b"", b"  \n\n\t\r\n"])
def test_an_empty_or_blank_file_is_refused(tmp_path, content):
    with pytest.raises(DataError, match=r"the file is empty; expected a ratings CSV$"):
        read_text(write(tmp_path, content), layout="a ratings CSV")


def test_gzip_is_read_transparently_and_a_gzip_of_nothing_is_empty(tmp_path):
    assert read_text(write(tmp_path, gzip.compress(b"a,b\n1,2\n"), "t.csv.gz")) == "a,b\n1,2\n"
    with pytest.raises(DataError, match="the file is empty"):
        read_text(write(tmp_path, gzip.compress(b""), "e.csv.gz"))


def test_a_truncated_gzip_is_corrupt(tmp_path):
    data = gzip.compress(b"user,item,rating\n" + b"1,2,3\n" * 200)
    with pytest.raises(DataError, match=r"truncated or corrupt gzip file"):
        read_text(write(tmp_path, data[: len(data) // 2], "t.csv.gz"))


def test_nul_bytes_suggest_utf16_or_binary(tmp_path):
    with pytest.raises(DataError, match=r"NUL bytes \(UTF-16 or binary\?\); expected utf-8 text"):
        read_text(write(tmp_path, "user,item\n1,2\n".encode("utf-16")))


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "cp1252"])
def test_nul_bytes_after_a_text_start_are_found_anywhere_with_their_row(tmp_path, encoding):
    text = b"user,item,rating\n" + b"1,2,3\n" * 2000  # 12 KB of text, then binary
    path = write(tmp_path, text + b"4,5,\x00\x01\x02\n7,8,9\n")
    with pytest.raises(DataError, match=r"NUL bytes \(UTF-16 or binary\?\)") as caught:
        read_text(path, encoding)
    assert caught.value.row == 2002 and caught.value.path == path


def test_nul_bytes_in_a_gzipped_file_are_found_past_its_start(tmp_path):
    raw = b"user,item,rating\n" + b"1,2,3\n" * 2000 + b"\x00"
    with pytest.raises(DataError, match="NUL bytes") as caught:
        read_text(write(tmp_path, gzip.compress(raw), "t.csv.gz"))
    assert caught.value.row == 2002


def test_a_bad_utf8_byte_names_its_row_and_value_and_the_hint(tmp_path):
    path = write(tmp_path, b"user,item\n1,2\n3,caf\xe9\n")
    with pytest.raises(DataError) as caught:
        read_text(path, encoding_hint=" (try latin-1)")
    err = caught.value
    assert err.row == 3 and err.path == path
    assert str(err) == (f"{path}, row 3: byte 0xe9 is not valid UTF-8; expected UTF-8 text "
                        "(try latin-1)")


def test_a_utf8_bom_is_dropped(tmp_path):
    assert read_text(write(tmp_path, b"\xef\xbb\xbfuser,item\n")) == "user,item\n"


def test_latin1_reads_latin1_and_notes_a_file_that_is_utf8_after_all(tmp_path):
    assert read_text(write(tmp_path, "Café\n".encode("latin-1")), "latin-1") == "Café\n"
    report = ReadReport()
    path = write(tmp_path, "Café\n", "u.item")
    assert read_text(path, "latin1", report=report) == "Café\n"
    assert report.notes == ["u.item: expected latin-1 (as MovieLens ships it) but the file is "
                            "valid UTF-8; read as UTF-8"]
    ascii_report = ReadReport()
    read_text(write(tmp_path, "Cafe\n", "a.item"), "latin-1", report=ascii_report)
    assert ascii_report.notes == []  # plain ASCII is both: nothing to say


def test_other_encodings_name_the_row_or_the_unknown_encoding(tmp_path):
    path = write(tmp_path, b"a\nb\n\xff\xfe\xfd\n")
    with pytest.raises(DataError, match=r"row 3: not valid ascii text; expected ascii"):
        read_text(path, "ascii")
    with pytest.raises(DataError, match=r"unknown encoding 'klingon'"):
        read_text(path, "klingon")


# --------------------------------------------------------------------------- delimiters


def test_guess_delimiter_picks_the_one_that_splits_the_line_most():
    assert guess_delimiter("a;b;c", ",") == ";"
    assert guess_delimiter("a\tb\tc|d", ",") == "\t"
    assert guess_delimiter("a::b::c", ",") == "::"
    assert guess_delimiter("a,b", ",") is None  # only the expected one splits it
    assert guess_delimiter("abc", ",") is None


def test_delimiter_names():
    assert [delimiter_name(s) for s in (",", "\t", "|", "::", ";", "#")] == [
        "comma", "tab", "pipe", "'::'", "semicolon", "'#'"]


def test_delimiter_error_names_what_the_first_line_looks_like(tmp_path):
    err = delimiter_error(tmp_path / "t.csv", "user;item;rating", ",", LAYOUT, 1)
    assert err.row == 1 and err.problem == (f"expected comma-separated fields ({LAYOUT}), "
                                            "found 1 field(s); line 1 looks semicolon-separated")
    plain = delimiter_error(tmp_path / "t.csv", "user", ",", LAYOUT, 1)
    assert plain.problem.endswith("found 1 field(s)")


def test_a_file_of_the_wrong_delimiter_is_refused_at_line_1(tmp_path):
    path = write(tmp_path, "user;item;rating\n1;2;3\n")
    with pytest.raises(DataError, match=r"row 1: expected comma-separated fields .* line 1 "
                       r"looks semicolon-separated"):
        table(path)


def test_a_double_colon_file_reads(tmp_path):
    path = write(tmp_path, "1::10::4\n2::20::5\n", "ratings.dat")
    t = table(path, sep="::", columns=("user", "item", "rating"))
    assert t.df.to_dict("list") == {"user": ["1", "2"], "item": ["10", "20"],
                                    "rating": ["4", "5"]}
    assert t.lines.tolist() == [1, 2]  # headerless: the first data row is line 1


# --------------------------------------------------------------------------- read_table


def test_a_header_file_reads_as_strings_with_line_numbers(tmp_path):
    report = ReadReport()
    path = write(tmp_path, " user , item ,rating,note\n1,10,4.5,\"a, b\"\n2,20,3,x\n")
    t = table(path, report=report)
    assert list(t.df.columns) == ["user", "item", "rating", "note"]  # names stripped
    assert t.lines.tolist() == [2, 3] and t.keep.all()
    assert t.col("note").tolist() == ["a, b", "x"]
    assert report.files == {"ratings": str(path)} and report.rows_read == {"ratings": 2}
    kept = t.kept()
    assert kept["line"].tolist() == [2, 3] and kept["user"].tolist() == ["1", "2"]


def test_a_missing_required_column_lists_the_columns(tmp_path):
    path = write(tmp_path, "user,item,score\n1,2,3\n")
    with pytest.raises(DataError, match=r"row 1: no column 'rating' \(columns: user, item, "
                       r"score\); expected a CSV with header"):
        table(path)


def test_too_many_fields_is_a_parse_error_with_its_row(tmp_path):
    path = write(tmp_path, "user,item,rating\n1,2,3\n4,5,6\n7,8,9,10\n")
    with pytest.raises(DataError) as caught:
        table(path)
    assert caught.value.row == 4
    assert caught.value.problem == f"expected 3 comma-separated fields, found 4 ({LAYOUT})"


@pytest.mark.parametrize("errors", ["raise", "skip"])
@pytest.mark.parametrize("all_numeric", [False, True])
def test_rows_of_one_field_more_than_the_header_are_refused_not_indexed(tmp_path, errors,
                                                                        all_numeric):
    # pandas would make the first field the index: user <- item, item <- rating ...
    path = write(tmp_path, "user,item,rating\n1,10,4,5\n2,20,3,5\n")
    with pytest.raises(DataError) as caught:
        table(path, errors=errors, all_numeric=all_numeric)
    assert caught.value.path == path and caught.value.row == 2
    assert caught.value.problem == (
        "the row has 4 comma-separated fields, the header has 3 (a missing column name, or an "
        f"unquoted comma inside a value?); expected {LAYOUT}")
    assert str(caught.value).startswith(f"{path}, row 2: the row has 4 comma-separated")


def test_rows_of_two_fields_more_or_another_delimiter_are_refused_too(tmp_path):
    path = write(tmp_path, "user,item,rating\n1,10,4,5,6\n2,20,3,5,6\n")
    with pytest.raises(DataError, match=r"row 2: the row has 5 comma-separated fields, the "
                       r"header has 3"):
        table(path)
    path = write(tmp_path, "user::item::rating\n1::10::4::5\n", "b.dat")
    with pytest.raises(DataError, match=r"row 2: the row has 4 '::'-separated fields, the "
                       r"header has 3"):
        table(path, sep="::")
    path = write(tmp_path, 'user,item,rating\n"1,x",10,4,5\n', "q.csv")
    with pytest.raises(DataError, match=r"row 2: the row has 4 comma-separated fields"):
        table(path)


def test_a_later_row_with_an_extra_field_keeps_its_parse_error(tmp_path):
    path = write(tmp_path, "user,item,rating\n1,10,4\n2,20,3,5\n")
    with pytest.raises(DataError) as caught:
        table(path)
    assert caught.value.row == 3
    assert caught.value.problem == f"expected 3 comma-separated fields, found 4 ({LAYOUT})"


def test_parser_error_without_counts_says_it_cannot_parse(tmp_path):
    err = parser_error(tmp_path / "t.csv", ValueError("EOF inside string"), ",", LAYOUT)
    assert err.row is None and err.problem == f"cannot parse the file ({LAYOUT}): EOF inside string"


def test_headerless_files_check_their_field_count(tmp_path):
    cols = ("user", "item", "rating")
    with pytest.raises(DataError, match=r"row 1: expected 3 comma-separated fields, found 4"):
        table(write(tmp_path, "1,2,3,4\n5,6,7,8\n"), columns=cols)
    with pytest.raises(DataError, match=r"row 1: expected comma-separated fields .*found 2"):
        table(write(tmp_path, "1,2\n5,6\n", "b.csv"), columns=cols)


def test_blank_lines_are_counted_and_dropped_never_raised(tmp_path):
    report = ReadReport()
    t = table(write(tmp_path, "user,item,rating\n1,2,3\n\n,,\n4,5,6\n"), report=report)
    assert report.skipped == {"ratings: blank line": 2}
    assert t.kept()["line"].tolist() == [2, 5] and report.rows_read == {"ratings": 2}


def test_a_short_row_raises_naming_its_row(tmp_path):
    with pytest.raises(DataError) as caught:
        table(write(tmp_path, "user,item,rating\n1,2,3\n4,5\n"))
    assert caught.value.row == 3
    assert caught.value.problem == f"expected 3 comma-separated fields, found 2 ({LAYOUT})"


def test_a_missing_value_raises_naming_its_row_and_column(tmp_path):
    with pytest.raises(DataError, match=r"row 3: missing item$"):
        table(write(tmp_path, "user,item,rating\n1,2,3\n4,,6\n"))


def test_the_first_bad_row_is_the_one_raised(tmp_path):
    with pytest.raises(DataError, match=r"row 2: missing rating$"):
        table(write(tmp_path, "user,item,rating\n1,2,\n4,5\n"))


def test_skipping_counts_bad_rows_by_reason_with_examples(tmp_path):
    report = ReadReport()
    text = "user,item,rating\n1,2,3\n4,5\n,6,7\n8,,9\n1,1,1\n2\n"
    t = table(write(tmp_path, text), errors="skip", report=report)
    assert report.skipped == {"ratings: too few fields": 2, "ratings: missing value": 2}
    assert report.examples["ratings: missing value"] == [
        "t.csv, row 4: missing user", "t.csv, row 5: missing item"]
    assert report.examples["ratings: too few fields"][0] == (
        f"t.csv, row 3: expected 3 comma-separated fields, found 2 ({LAYOUT})")
    assert t.kept()["line"].tolist() == [2, 6]
    assert report.total_skipped == 4


def test_optional_columns_may_be_blank(tmp_path):
    t = table(write(tmp_path, "user,item,rating,note\n1,2,3,\n"))
    assert t.kept()["note"].tolist() == [""]


def test_a_header_without_data_rows_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"the file has no data rows; expected"):
        table(write(tmp_path, "user,item,rating\n\n"))
    with pytest.raises(DataError, match=r"the file has no data rows"):
        table(write(tmp_path, "user,item,rating\n", "h.csv"), all_numeric=True)


def test_the_numeric_fast_path_reads_floats_and_falls_back_on_any_problem(tmp_path):
    fast = table(write(tmp_path, "user,item,rating\n1,2,3.5\n4,5,6\n"), all_numeric=True)
    assert fast.df["rating"].dtype == np.float64 and fast.lines.tolist() == [2, 3]
    assert fast.cell("rating", 0) == "3.5"  # as the file spells it
    slow = table(write(tmp_path, "user,item,rating\n1,2,x\n", "s.csv"), all_numeric=True)
    assert not is_float_dtype(slow.df["rating"]) and slow.cell("rating", 0) == "x"
    nan = table(write(tmp_path, "user,item,rating\n1,2,nan\n", "n.csv"), all_numeric=True)
    assert not is_float_dtype(nan.df["rating"])  # not finite: the string parse


def test_quoting_none_keeps_quotes(tmp_path):
    path = write(tmp_path, 'user|item|title\n1|2|"Heat" (1995)\n')
    report = ReadReport()
    t = read_table(path, "items", sep="|", columns=None, required=("user", "item"),
                   encoding="utf-8", layout="pipes", report=report, sink=Sink(report, "raise"),
                   quoting=csv.QUOTE_NONE)
    assert t.col("title").tolist() == ['"Heat" (1995)']


# --------------------------------------------------------------------------- Sink


def test_the_sink_refuses_another_mode():
    with pytest.raises(ValueError, match="errors must be 'raise' or 'skip', not 'ignore'"):
        Sink(ReadReport(), "ignore")


def test_the_sink_raises_the_first_row_or_counts_all(tmp_path):
    lines, details = np.array([7, 9, 11, 12]), ["a", "b", "c", "d"]
    with pytest.raises(DataError) as caught:
        Sink(ReadReport(), "raise").bad(tmp_path / "f.csv", "r", "bad", lines, details)
    assert (caught.value.row, caught.value.problem) == (7, "a")
    report = ReadReport()
    sink = Sink(report, "skip")
    sink.bad(tmp_path / "f.csv", "r", "bad", lines, details)
    assert report.skipped == {"r: bad": 4}
    assert report.examples["r: bad"] == ["f.csv, row 7: a", "f.csv, row 9: b", "f.csv, row 11: c"]
    with pytest.raises(DataError, match="row 3: always"):
        sink.bad(tmp_path / "f.csv", "r", "worse", np.array([3]), ["always"], always_raise=True)
    sink.bad(tmp_path / "f.csv", "r", "none", np.array([], dtype=int), [])
    assert "r: none" not in report.skipped


def test_the_report_keeps_three_examples_per_reason_and_merges():
    a, b = ReadReport(), ReadReport()
    a.skip("x", 2, ["1", "2"])
    a.skip("x", 0, ["ignored"])
    b.skip("x", 3, ["3", "4", "5"])
    b.note("n")
    b.note("n")
    b.rows_read["r"] = 5
    a.merge(b)
    assert a.skipped == {"x": 5} and a.examples == {"x": ["1", "2", "3"]}
    assert a.notes == ["n"] and a.rows_read == {"r": 5} and a.total_skipped == 5


# --------------------------------------------------------------------------- parse_numbers


def test_parse_numbers_strips_and_leaves_dropped_rows_nan(tmp_path):
    t = table(write(tmp_path, "user,item,rating\n1, 2 ,3\n4,5,\n"), errors="skip")
    values = parse_numbers(t, "item", "item id", Sink(ReadReport(), "raise"), integer=True)
    assert values[0] == 2.0 and np.isnan(values[1])  # row 3 was dropped (missing rating)


def test_parse_numbers_refuses_non_numbers_and_non_integers_with_rows(tmp_path):
    t = table(write(tmp_path, "user,item,rating\n1,2,3\nx,5,6\n"))
    with pytest.raises(DataError, match=r"row 3: user id 'x' is not an integer \(ids\)$"):
        parse_numbers(t, "user", "user id", Sink(ReadReport(), "raise"), integer=True,
                      hint=" (ids)")
    t = table(write(tmp_path, "user,item,rating\n1.5,2,3\n", "f.csv"), all_numeric=True)
    with pytest.raises(DataError, match=r"row 2: user id '1.5' is not an integer"):
        parse_numbers(t, "user", "user id", Sink(ReadReport(), "raise"), integer=True)


def test_parse_numbers_counts_bad_rows_and_drops_them_when_skipping(tmp_path):
    report = ReadReport()
    t = table(write(tmp_path, "user,item,rating,ts\n1,2,3,\n4,5,x,10\n7,8,9,11\n"),
              errors="skip", report=report)
    sink = Sink(report, "skip")
    ratings = parse_numbers(t, "rating", "rating", sink)
    assert np.isnan(ratings[1]) and ratings[[0, 2]].tolist() == [3.0, 9.0]
    assert report.skipped == {"ratings: non-numeric rating": 1}
    assert report.examples["ratings: non-numeric rating"] == [
        "t.csv, row 3: rating 'x' is not a number"]
    ts = parse_numbers(t, "ts", "timestamp", sink)  # row 2's blank: a missing timestamp
    assert report.skipped["ratings: missing timestamp"] == 1 and np.isnan(ts[0])
    assert t.keep.tolist() == [False, False, True]


def test_parse_numbers_optional_blanks_are_nan(tmp_path):
    t = table(write(tmp_path, "user,item,rating,ts\n1,2,3,\n4,5,6,10\n"))
    ts = parse_numbers(t, "ts", "timestamp", Sink(ReadReport(), "raise"), optional=True)
    assert np.isnan(ts[0]) and ts[1] == 10.0 and t.keep.all()
