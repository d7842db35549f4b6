"""Labels for backtests: which recorded events were bad (fraud, abuse) and which were not.

A labels file is CSV whose header names at least the columns ``id`` (an input event's id, as
in the event log) and ``label``: ``1``, ``true`` or ``yes`` marks a *positive* (the event
should have been stopped: confirmed fraud, a drained account, abuse), ``0``, ``false`` or
``no`` a *negative*; case and surrounding spaces do not matter. Other columns (a case number,
an analyst's note) are ignored. An id may repeat with the same label (two analysts agreeing);
with a different one it is an error. Events without a label are *unlabeled*: a backtest
counts them in hits and changes, never in precision or recall.

Example (``LABELS.csv``)::

    id,label,note
    w-1001,1,chargeback 2026-01-03
    w-1002,0,
"""

from __future__ import annotations

import csv
import enum
import io

POSITIVE = frozenset({"1", "true", "yes"})
NEGATIVE = frozenset({"0", "false", "no"})


class LabelProblem(enum.StrEnum):
    """Why a labels file was refused."""

    NO_HEADER = "no_header"  # the file is empty
    MISSING_COLUMN = "missing_column"  # the header lacks ``id`` or ``label``
    EMPTY_ID = "empty_id"
    BAD_LABEL = "bad_label"  # not one of POSITIVE or NEGATIVE
    CONFLICTING_LABEL = "conflicting_label"  # one id labeled both ways


class LabelsError(ValueError):
    """A labels file that cannot be read: the line, the field, its value and why."""

    def __init__(self, line: int, problem: LabelProblem, field: str, value: str, why: str):
        super().__init__(f"line {line}: {field}={value!r}: {why}")
        self.line = line
        self.problem = problem
        self.field = field
        self.value = value


def parse_labels(text: str) -> dict[str, bool]:
    """Event id -> ``True`` (positive) or ``False`` (negative); see the module docstring."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise LabelsError(1, LabelProblem.NO_HEADER, "header", "", "empty file")
    columns = [name.strip().lower() for name in header]
    for needed in ("id", "label"):
        if needed not in columns:
            raise LabelsError(
                1, LabelProblem.MISSING_COLUMN, "header", ",".join(header), f"no {needed!r} column"
            )
    at_id, at_label = columns.index("id"), columns.index("label")
    labels: dict[str, bool] = {}
    for row in reader:
        line = reader.line_num  # the file's line, also after a quoted note spanning lines
        if not any(cell.strip() for cell in row):
            continue
        event_id = row[at_id].strip() if at_id < len(row) else ""
        raw = row[at_label] if at_label < len(row) else ""
        if not event_id:
            raise LabelsError(line, LabelProblem.EMPTY_ID, "id", event_id, "an id is required")
        word = raw.strip().lower()
        if word in POSITIVE:
            positive = True
        elif word in NEGATIVE:
            positive = False
        else:
            raise LabelsError(
                line, LabelProblem.BAD_LABEL, "label", raw, "expected 1/0, true/false or yes/no"
            )
        if labels.setdefault(event_id, positive) != positive:
            raise LabelsError(
                line, LabelProblem.CONFLICTING_LABEL, "label", raw, f"{event_id} labeled both ways"
            )
    return labels
