"""Legal deadlines of an erasure request, per regulation.

GDPR Art. 12(3): one calendar month from receipt, extendable once by two further months (with a reason).
CCPA §1798.130 / Regs §7021: 45 calendar days, extendable once by 45 more; receipt acknowledged within 10 business
days. Business days are Monday to Friday: no holiday calendar is applied (holidays differ per state and year), so
the acknowledgement date is, if anything, early — never late.

Calendar-month arithmetic clamps to the end of the target month: 31 Jan → 28/29 Feb, 31 Mar → 30 Apr.
"""

import calendar
import datetime
from typing import Any

from django.utils import timezone

from .models import CLOSED_STATES

CCPA_DAYS = 45
CCPA_EXTENSION_DAYS = 45
GDPR_MONTHS = 1
GDPR_EXTENSION_MONTHS = 2
ACKNOWLEDGE_BUSINESS_DAYS = 10


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day `months` calendar months later, clamped to the last day of the target month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def add_business_days(day: datetime.date, days: int) -> datetime.date:
    """`days` Monday-to-Friday days after `day` (the day itself does not count)."""
    current = day
    while days > 0:
        current += datetime.timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def due_date(regulation: str, received: datetime.date) -> datetime.date:
    if regulation == "gdpr":
        return add_months(received, GDPR_MONTHS)
    if regulation == "ccpa":
        return received + datetime.timedelta(days=CCPA_DAYS)
    raise ValueError(f"unknown regulation: {regulation}")


def extended_due_date(regulation: str, due: datetime.date) -> datetime.date:
    if regulation == "gdpr":
        return add_months(due, GDPR_EXTENSION_MONTHS)
    if regulation == "ccpa":
        return due + datetime.timedelta(days=CCPA_EXTENSION_DAYS)
    raise ValueError(f"unknown regulation: {regulation}")


def acknowledge_due_date(received: datetime.date) -> datetime.date:
    return add_business_days(received, ACKNOWLEDGE_BUSINESS_DAYS)


def days_left(request: Any, today: datetime.date | None = None) -> int | None:
    """Days until the due date (negative once overdue); None once the request is closed."""
    if request.state in CLOSED_STATES or request.due_at is None:
        return None
    today = today or timezone.localdate()
    return (request.due_at - today).days


def is_overdue(request: Any, today: datetime.date | None = None) -> bool:
    left = days_left(request, today)
    return left is not None and left < 0
