"""Labels files for backtests: the format, and every refusal with its line, field and value."""

from __future__ import annotations

import pytest

from fengkong.rules.labels import LabelProblem, LabelsError, parse_labels


def test_the_documented_example():
    text = "id,label,note\nw-1001,1,chargeback 2026-01-03\nw-1002,0,\n"
    assert parse_labels(text) == {"w-1001": True, "w-1002": False}


def test_words_case_spaces_column_order_blank_lines_and_agreeing_repeats():
    text = (
        "Label , ID,analyst\n TRUE ,a,x\nno,b,y\n\nYes,c,z\nfalse, d ,\n1,a,second analyst agrees\n"
    )
    assert parse_labels(text) == {"a": True, "b": False, "c": True, "d": False}


def test_an_empty_file_has_no_labels_and_a_header_alone_has_none():
    with pytest.raises(LabelsError) as caught:
        parse_labels("")
    assert caught.value.problem is LabelProblem.NO_HEADER
    assert parse_labels("id,label\n") == {}


@pytest.mark.parametrize(
    ("text", "problem", "line", "field", "value"),
    [
        ("event,label\nw1,1\n", LabelProblem.MISSING_COLUMN, 1, "header", "event,label"),
        ("id,verdict\nw1,1\n", LabelProblem.MISSING_COLUMN, 1, "header", "id,verdict"),
        ("id,label\nw1,1\n ,0\n", LabelProblem.EMPTY_ID, 3, "id", ""),
        ("id,label\nw1,fraud\n", LabelProblem.BAD_LABEL, 2, "label", "fraud"),
        ("id,label\nw1\n", LabelProblem.BAD_LABEL, 2, "label", ""),
        ("id,label\nw1,1\nw2,0\nw1,0\n", LabelProblem.CONFLICTING_LABEL, 4, "label", "0"),
        ('id,label,note\nw1,1,"two\nlines"\nw2,x,\n', LabelProblem.BAD_LABEL, 4, "label", "x"),
    ],
)
def test_refusals_name_the_line_the_field_and_the_value(text, problem, line, field, value):
    with pytest.raises(LabelsError) as caught:
        parse_labels(text)
    error = caught.value
    assert (error.problem, error.line, error.field, error.value) == (problem, line, field, value)
    assert str(error).startswith(f"line {line}: {field}={value!r}: ")
