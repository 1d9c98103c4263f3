"""CCPA §7102(a) metrics of deletion requests for a calendar year (UTC): received, complied with in whole, complied
with in part (some memories kept under a legal hold), denied (by DRP reason code), and the median and mean days to
respond. Requests are counted in the year they were received; a response is a verification or a rejection
(cancelled and still-open requests are received but not responded to, and are counted apart so the numbers add up:
received = complied_in_whole + complied_in_part + denied + cancelled + open).

Two aggregate statements over the (received_at) index range of the year: ~100,000 requests answer in well under a
second (bench/reports.py).
"""

import csv
import io
from datetime import UTC, datetime
from typing import Any

from django.db import connection

from .models import ErasureRequest, Regulation, RejectionReason, State

MIN_YEAR, MAX_YEAR = 2000, 2999
DAYS_PRECISION = 2

_TABLE = ErasureRequest._meta.db_table
_FIGURES_SQL = f"""
    SELECT count(*),
           count(*) FILTER (WHERE state = %(verified)s AND coalesce(held_count, 0) = 0),
           count(*) FILTER (WHERE state = %(verified)s AND held_count > 0),
           count(*) FILTER (WHERE state = %(rejected)s),
           count(*) FILTER (WHERE state = %(cancelled)s),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY days),
           avg(days)
    FROM (SELECT state, held_count,
                 extract(epoch FROM CASE state WHEN %(verified)s THEN verified_at
                                               WHEN %(rejected)s THEN rejected_at END - received_at) / 86400.0
                   AS days
          FROM {_TABLE}
          WHERE regulation = %(regulation)s AND received_at >= %(start)s AND received_at < %(end)s) r
"""
_DENIED_SQL = f"""
    SELECT rejection_reason, count(*) FROM {_TABLE}
    WHERE regulation = %(regulation)s AND received_at >= %(start)s AND received_at < %(end)s AND state = %(rejected)s
    GROUP BY rejection_reason
"""


def _days(value: Any) -> float | None:
    return None if value is None else round(float(value), DAYS_PRECISION)


def ccpa_report(*, year: int) -> dict[str, Any]:
    """The year's figures for CCPA deletion requests. Side effects: none."""
    params: dict[str, Any] = {
        "regulation": Regulation.CCPA.value,
        "start": datetime(year, 1, 1, tzinfo=UTC),
        "end": datetime(year + 1, 1, 1, tzinfo=UTC),
        "verified": State.VERIFIED.value,
        "rejected": State.REJECTED.value,
        "cancelled": State.CANCELLED.value,
    }
    with connection.cursor() as cur:
        cur.execute(_FIGURES_SQL, params)
        received, whole, part, denied, cancelled, median, mean = cur.fetchone()
        cur.execute(_DENIED_SQL, params)
        by_reason = {reason or RejectionReason.OTHER.value: n for reason, n in cur.fetchall()}
    return {
        "regulation": Regulation.CCPA.value,
        "year": year,
        "period": {"from": f"{year}-01-01", "to": f"{year}-12-31", "timezone": "UTC"},
        "received": received,
        "complied_in_whole": whole,
        "complied_in_part": part,
        "denied": {"total": denied, "by_reason": {r: by_reason.get(r, 0) for r in RejectionReason.values}},
        "cancelled": cancelled,
        "open": received - whole - part - denied - cancelled,
        "median_days": _days(median),
        "mean_days": _days(mean),
    }


def ccpa_report_csv(report: dict[str, Any]) -> str:
    """The report as `metric,value` rows (denied reasons as `denied.<reason>`)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["metric", "value"])
    writer.writerow(["year", report["year"]])
    for name in ("received", "complied_in_whole", "complied_in_part"):
        writer.writerow([name, report[name]])
    writer.writerow(["denied", report["denied"]["total"]])
    for reason, count in report["denied"]["by_reason"].items():
        writer.writerow([f"denied.{reason}", count])
    for name in ("cancelled", "open"):
        writer.writerow([name, report[name]])
    for name in ("median_days", "mean_days"):
        writer.writerow([name, "" if report[name] is None else report[name]])
    return buf.getvalue()
