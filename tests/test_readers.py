"""Interaction, atomic, triple and benchmark readers."""
from __future__ import annotations

import csv
import io
import string

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgrec.data import read_atomic, read_interactions, read_kgat, read_links, read_triples
from kgrec.data.formats import read_art_office
from kgrec.errors import InputError, KgrecError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_header_maps_common_column_names(tmp_path):
    f = write(tmp_path / "r.csv", "user_id,item_id,rating,timestamp\n1,10,5,100\n2,11,3,200\n")
    frame = read_interactions(f)
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert frame["user"].tolist() == ["1", "2"]
    assert frame["rating"].tolist() == [5.0, 3.0]


def test_threshold_keeps_only_positive_ratings(tmp_path):
    f = write(tmp_path / "r.csv", "user,item,rating\na,x,4\na,y,3.5\nb,x,5\n")
    assert read_interactions(f, threshold=4.0)["item"].tolist() == ["x", "x"]


def test_headerless_tsv_uses_positions(tmp_path):
    f = write(tmp_path / "r.txt", "0\t5\t1\n1\t6\t1\n")
    frame = read_interactions(f, header=False, columns={"user": 0, "item": 1})
    assert frame["item"].tolist() == ["5", "6"]
    assert frame["rating"].isna().all()


def test_parquet_roundtrips(tmp_path):
    pd.DataFrame({"u": ["a", "b"], "i": ["x", "y"], "r": [1.0, 5.0]}).to_parquet(tmp_path / "r.parquet")
    frame = read_interactions(tmp_path / "r.parquet", columns={"user": "u", "item": "i", "rating": "r"})
    assert frame["rating"].tolist() == [1.0, 5.0]


def test_wrong_column_count_names_file_and_line(tmp_path):
    f = write(tmp_path / "ratings.csv", "user,item,rating\n1,2,3\n1,2,3\n4,5\n")
    with pytest.raises(InputError, match=r"ratings.csv line 4: expected 3 columns, got 2"):
        read_interactions(f)


def test_non_numeric_rating_names_the_line(tmp_path):
    f = write(tmp_path / "ratings.csv", "user,item,rating\n1,2,3\n1,3,five\n")
    with pytest.raises(InputError, match=r"ratings.csv line 3: column 'rating': expected a numeric rating, got 'five'"):
        read_interactions(f)


def test_unknown_column_lists_the_real_ones(tmp_path):
    f = write(tmp_path / "ratings.csv", "user,item,rating\n1,2,3\n")
    with pytest.raises(InputError, match=r"unknown column 'usr'.*user, item, rating"):
        read_interactions(f, columns={"user": "usr", "item": "item"})


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_interactions(tmp_path / "nope.csv")


def test_atomic_header_types_convert_float_columns(tmp_path):
    f = write(tmp_path / "x.inter", "user_id:token\titem_id:token\trating:float\n1\t2\t4\n")
    frame = read_atomic(f)
    assert list(frame.columns) == ["user_id", "item_id", "rating"]
    assert frame["rating"].dtype == np.float64


def test_atomic_header_without_type_is_rejected(tmp_path):
    f = write(tmp_path / "x.item", "item_id\ttitle:token\n1\tA\n")
    with pytest.raises(InputError, match=r"x.item line 1: header field 'item_id'"):
        read_atomic(f)


def test_triples_and_links(tmp_path):
    kg = write(tmp_path / "x.kg", "head_id:token\trelation_id:token\ttail_id:token\nm.1\tfilm.actor\tm.2\n")
    assert read_triples(kg).values.tolist() == [["m.1", "film.actor", "m.2"]]
    link = write(tmp_path / "x.link", "item_id:token\tentity_id:token\n7\tm.1\n")
    assert read_links(link).values.tolist() == [["7", "m.1"]]
    kgat = write(tmp_path / "kg_final.txt", "0 1 2\n3 1 4\n")
    assert len(read_triples(kgat, sep=None)) == 2


def test_kgat_adjacency_lists_expand_to_pairs(tmp_path):
    f = write(tmp_path / "train.txt", "0 1 2 3\n1 5\n")
    frame = read_kgat(f)
    assert list(zip(frame["user"], frame["item"])) == [("0", "1"), ("0", "2"), ("0", "3"), ("1", "5")]


def test_art_office_sequences_hold_out_the_last_item_of_the_domain(tmp_path):
    # user 9000 (valid): history 1 (art), 18700 (office); next art 2, next office 18701
    for name, uid in (("train_F2.txt", "0"), ("valid_F2.txt", "9000"), ("test_F2.txt", "8000")):
        write(tmp_path / name, f"{uid}\t2\t1|0|0\t18700|1|1\t2|2|2\t\n{uid}\t2\t1|0|0\t18700|1|1\t18701|2|2\t\n")
    office = read_art_office(tmp_path, "office")
    valid = office[office["user"] == "9000"]
    assert valid.set_index("item")["split"].to_dict() == {"18700": "train", "18701": "valid"}
    train_user = office[office["user"] == "0"]
    assert set(train_user["split"]) == {"train"}


# --- fuzzing ---------------------------------------------------------------------
ids = st.text(alphabet=string.ascii_letters + string.digits + "_-.:/", min_size=1, max_size=8)
rows = st.lists(st.tuples(ids, ids, st.integers(0, 5), st.integers(0, 10**9)), min_size=0, max_size=30)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, sep=st.sampled_from([",", "\t"]))
def test_written_interactions_read_back_identically(tmp_path, rows, sep):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator="\n")
    w.writerow(["user", "item", "rating", "timestamp"])
    w.writerows(rows)
    f = write(tmp_path / ("r.csv" if sep == "," else "r.tsv"), buf.getvalue())
    frame = read_interactions(f)
    assert frame["user"].tolist() == [r[0] for r in rows]
    assert frame["item"].tolist() == [r[1] for r in rows]
    assert frame["rating"].tolist() == [float(r[2]) for r in rows]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("ab1,\t\n\"x.5 ")), max_size=80))
def test_arbitrary_text_either_parses_or_raises_an_input_error(tmp_path, text):
    f = write(tmp_path / "r.csv", "user,item,rating\n" + text)
    try:
        frame = read_interactions(f)
    except KgrecError as e:
        assert "r.csv" in str(e)
    else:
        assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
        assert (frame["user"] != "").all()


@pytest.mark.parametrize("sep, text", [(",", "user,item\nu1,i1\nu2,i\x002\n"), ("\t", "user\titem\nu1\ti1\nu\x002\ti2\n")])
def test_a_nul_byte_in_a_field_is_refused_with_file_and_line(tmp_path, sep, text):
    path = tmp_path / ("r.csv" if sep == "," else "r.tsv")
    write(path, text)
    with pytest.raises(InputError, match=rf"{path.name} line 3: a NUL byte"):
        read_interactions(path, sep=sep)
