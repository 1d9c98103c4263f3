"""The CCPA §7102(a) report: arithmetic for requests in every state, calendar-year edges, JSON and CSV."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from erasure.reports import ccpa_report
from tests.erasure.factories import canary_request as make_request

pytestmark = pytest.mark.django_db

Y = 2025


def at(month: int, day: int, hour: int = 12, year: int = Y) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def _ccpa(state: str, received: datetime, **fields):
    return make_request(state=state, regulation="ccpa", received_at=received, **fields)


def _year_of_every_state():
    """Ten CCPA requests received in Y (one of each outcome and some open), plus requests outside Y or GDPR."""
    r = at(3, 1)
    _ccpa("verified", r, verified_at=r + timedelta(days=2), held_count=0)  # whole, 2 days
    _ccpa("verified", r, verified_at=r + timedelta(days=4), held_count=0)  # whole, 4 days
    _ccpa("verified", r, verified_at=r + timedelta(days=6), held_count=3)  # part, 6 days
    _ccpa("rejected", r, rejected_at=r + timedelta(days=1), rejection_reason="no_match")  # denied, 1 day
    _ccpa("rejected", r, rejected_at=r + timedelta(days=12), rejection_reason="insuf_verification")  # 12 days
    _ccpa("rejected", r, rejected_at=r + timedelta(days=10), rejection_reason="insuf_verification")  # 10 days
    _ccpa("cancelled", r, cancelled_at=r + timedelta(days=1))
    for state in ("received", "scoped", "deleted", "failed"):
        _ccpa(state, r)
    # edges: the first and last instants of Y count; the instants just outside do not
    _ccpa("received", datetime(Y, 1, 1, 0, 0, 0, tzinfo=UTC))
    _ccpa("received", datetime(Y, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
    _ccpa("verified", datetime(Y - 1, 12, 31, 23, 59, 59, tzinfo=UTC), verified_at=at(1, 3), held_count=0)
    _ccpa("verified", datetime(Y + 1, 1, 1, tzinfo=UTC), verified_at=at(1, 2, year=Y + 1), held_count=0)
    make_request(state="verified", regulation="gdpr", received_at=r, held_count=0)  # not CCPA


def test_the_figures_of_a_year_add_up_over_every_state():
    _year_of_every_state()

    report = ccpa_report(year=Y)

    assert report["received"] == 13
    assert (report["complied_in_whole"], report["complied_in_part"]) == (2, 1)
    assert report["denied"]["total"] == 3
    assert report["denied"]["by_reason"]["insuf_verification"] == 2
    assert report["denied"]["by_reason"]["no_match"] == 1
    assert report["denied"]["by_reason"]["suspected_fraud"] == 0
    assert (report["cancelled"], report["open"]) == (1, 6)
    received = report["received"]
    assert (
        received == sum(report[k] for k in ("complied_in_whole", "complied_in_part", "cancelled", "open")) + 3
    )
    # days to respond over the six responses: 1, 2, 4, 6, 10, 12
    assert report["median_days"] == 5.0
    assert report["mean_days"] == 5.83


def test_a_request_counts_in_the_year_it_was_received():
    _year_of_every_state()

    before, after = ccpa_report(year=Y - 1), ccpa_report(year=Y + 1)

    assert (before["received"], before["complied_in_whole"], before["median_days"]) == (
        1,
        1,
        2.5,
    )  # 23:59:59 → 12:00 two days on
    assert (after["received"], after["complied_in_whole"]) == (1, 1)


def test_a_year_without_requests_has_zeros_and_no_averages():
    report = ccpa_report(year=2001)
    assert report["received"] == report["denied"]["total"] == 0
    assert report["median_days"] is None and report["mean_days"] is None


def test_the_api_answers_json_and_csv(staff_api):
    _year_of_every_state()

    as_json = staff_api.get("/api/v1/reports/ccpa/", {"year": Y})
    as_csv = staff_api.get("/api/v1/reports/ccpa/", {"year": Y, "format": "csv"})

    assert as_json.status_code == 200 and as_json.json() == ccpa_report(year=Y)
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    rows = dict(csv.reader(io.StringIO(as_csv.content.decode())))
    assert rows["received"] == "13" and rows["complied_in_part"] == "1"
    assert rows["denied.insuf_verification"] == "2" and rows["median_days"] == "5.0"


@pytest.mark.parametrize("query", [{}, {"year": "twenty"}, {"year": 1999}, {"year": Y, "format": "xml"}])
def test_a_bad_query_is_400_naming_the_field(staff_api, query):
    response = staff_api.get("/api/v1/reports/ccpa/", query)
    assert response.status_code == 400
    assert set(response.json()) <= {"year", "format"} and response.json()


def test_a_plain_memory_key_gets_403(api):
    assert api.get("/api/v1/reports/ccpa/", {"year": Y}).status_code == 403
