"""Deadline arithmetic per regulation (erasure/deadlines.py)."""

import datetime
from types import SimpleNamespace

import pytest

from erasure.deadlines import (
    acknowledge_due_date,
    add_business_days,
    add_months,
    days_left,
    due_date,
    extended_due_date,
    is_overdue,
)

D = datetime.date


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (D(2026, 1, 15), D(2026, 2, 15)),
        (D(2027, 1, 31), D(2027, 2, 28)),  # clamped to the end of a common February
        (D(2028, 1, 31), D(2028, 2, 29)),  # leap year
        (D(2028, 1, 30), D(2028, 2, 29)),
        (D(2026, 3, 31), D(2026, 4, 30)),
        (D(2026, 12, 31), D(2027, 1, 31)),  # over the year end
        (D(2026, 12, 15), D(2027, 1, 15)),
    ],
)
def test_gdpr_due_date_is_one_calendar_month_clamped(received, due):
    assert due_date("gdpr", received) == due


def test_gdpr_extension_adds_two_calendar_months():
    assert extended_due_date("gdpr", D(2026, 2, 15)) == D(2026, 4, 15)
    assert extended_due_date("gdpr", D(2026, 12, 31)) == D(2027, 2, 28)
    assert extended_due_date("gdpr", D(2027, 12, 31)) == D(2028, 2, 29)


def test_ccpa_due_date_is_45_days_and_extension_45_more():
    assert due_date("ccpa", D(2026, 1, 1)) == D(2026, 2, 15)
    assert due_date("ccpa", D(2027, 12, 20)) == D(2028, 2, 3)
    assert extended_due_date("ccpa", D(2026, 2, 15)) == D(2026, 4, 1)


@pytest.mark.parametrize(
    ("received", "ack"),
    [
        (D(2026, 11, 23), D(2026, 12, 7)),  # Monday → two weeks later, Monday
        (D(2026, 11, 27), D(2026, 12, 11)),  # Friday → Friday two weeks on
        (D(2026, 11, 28), D(2026, 12, 11)),  # Saturday: counting starts Monday
        (D(2026, 11, 29), D(2026, 12, 11)),  # Sunday
        (D(2026, 12, 24), D(2027, 1, 7)),  # no holiday calendar: 25 Dec and 1 Jan count
    ],
)
def test_ccpa_acknowledgement_is_due_in_10_business_days(received, ack):
    assert acknowledge_due_date(received) == ack
    assert ack.weekday() < 5


def test_business_days_skip_weekends():
    assert add_business_days(D(2026, 11, 27), 1) == D(2026, 11, 30)
    assert add_business_days(D(2026, 11, 27), 0) == D(2026, 11, 27)


def test_add_months_handles_negative_and_long_spans():
    assert add_months(D(2026, 3, 31), -1) == D(2026, 2, 28)
    assert add_months(D(2024, 2, 29), 12) == D(2025, 2, 28)


def test_unknown_regulation_is_refused():
    with pytest.raises(ValueError):
        due_date("hipaa", D(2026, 1, 1))


def test_days_left_and_overdue_for_open_and_closed_requests():
    open_request = SimpleNamespace(state="scoped", due_at=D(2026, 2, 15))
    assert days_left(open_request, today=D(2026, 2, 10)) == 5
    assert not is_overdue(open_request, today=D(2026, 2, 15))
    assert days_left(open_request, today=D(2026, 2, 17)) == -2
    assert is_overdue(open_request, today=D(2026, 2, 17))
    for state in ("verified", "rejected", "cancelled"):
        closed = SimpleNamespace(state=state, due_at=D(2026, 2, 15))
        assert days_left(closed, today=D(2026, 3, 1)) is None
        assert not is_overdue(closed, today=D(2026, 3, 1))
