"""Reads of the privacy team's console: the queue (search, sort, assignment, masked subjects, duplicate flags,
acknowledgement), the week's dashboard figures, and the readable forms of a request's audit trail and counts.

Nothing here writes; the console's writes go through erasure.services. Subjects are shown masked, and duplicates
are found by the keyed pseudonyms kept for good on every request (never by comparing clear identifiers).
"""

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from .models import AuditEntry, ErasureRequest, State
from .selectors import OPEN_STATES, erasure_request_list
from .services import NONE_KEY

DUE_SOON_DAYS = 7
ON_TIME_WINDOW_DAYS = 90
WEEK_DAYS = 7

# --- masking -----------------------------------------------------------------------------------------------------

MASK = "***"


def mask_email(email: str) -> str:
    """a***@example.com: the first character of the local part and the domain (which says which provider, not who)."""
    local, at, domain = (email or "").partition("@")
    if not local:
        return ""
    return f"{local[0]}{MASK}{at}{domain}"


def mask_user_id(user_id: str) -> str:
    """Enough of an id to tell two rows apart at a glance, never enough to read it: u***, us***45, or *** when
    the id is too short to keep any of it."""
    value = user_id or ""
    if len(value) <= 3:
        return MASK
    if len(value) <= 8:
        return f"{value[0]}{MASK}"
    return f"{value[:2]}{MASK}{value[-2:]}"


def subject_masked(request: ErasureRequest) -> dict[str, Any]:
    """{"user_id", "more", "email", "pseudonymised"}: the subject as the queue shows it."""
    ids = list(request.subject_user_ids or [])
    return {
        "user_id": mask_user_id(ids[0]) if ids else "",
        "more": max(0, len(ids) - 1),
        "email": mask_email(request.subject_email),
        "pseudonymised": not ids and not request.subject_email,
    }


# --- queue -------------------------------------------------------------------------------------------------------

# By due date, the open requests come first: a closed one has no deadline left to meet.
SORTS = {
    "received": ("-received_at", "-id"),
    "due": ("is_closed", "due_at", "-received_at"),
    "-due": ("is_closed", "-due_at", "-received_at"),
}


def queue_list(
    *,
    state: str | None = None,
    regulation: str | None = None,
    overdue: bool | None = None,
    channel: str | None = None,
    reference: str = "",
    assigned_to: Any = None,
    sort: str = "received",
) -> QuerySet[ErasureRequest]:
    """The queue: the API's filters, plus a search by reference (a fragment such as 000042 is enough), the
    requests assigned to one team member, and a sort by due date."""
    qs = erasure_request_list(state=state, regulation=regulation, overdue=overdue, channel=channel)
    if reference:
        qs = qs.filter(reference__icontains=reference.strip())
    if assigned_to is not None:
        qs = qs.filter(assigned_to=assigned_to)
    qs = qs.annotate(
        is_closed=Case(
            When(state__in=OPEN_STATES, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
    )
    return qs.select_related("assigned_to").order_by(*SORTS.get(sort, SORTS["received"]))


def _pseudonyms(request: ErasureRequest) -> tuple[list[str], str | None]:
    data = request.subject_pseudonyms or {}
    return list(data.get("user_ids") or []), data.get("email") or None


def duplicates(requests: Sequence[ErasureRequest]) -> dict[Any, list[str]]:
    """For each request, the references of the *other open* requests of the same subject: one query over the
    keyed pseudonyms (any user id in common, or the same e-mail)."""
    ids: set[str] = set()
    emails: set[str] = set()
    for request in requests:
        user_ids, email = _pseudonyms(request)
        ids.update(user_ids)
        if email:
            emails.add(email)
    if not ids and not emails:
        return {}
    match = Q()
    if ids:
        match |= Q(subject_pseudonyms__user_ids__has_any_keys=sorted(ids))
    if emails:
        match |= Q(subject_pseudonyms__email__in=sorted(emails))
    open_ones = list(
        ErasureRequest.objects.filter(match, state__in=OPEN_STATES)
        .order_by("received_at")
        .values("id", "reference", "subject_pseudonyms")
    )
    out: dict[Any, list[str]] = {}
    for request in requests:
        own_ids, email = _pseudonyms(request)
        mine = set(own_ids)
        others = [
            row["reference"]
            for row in open_ones
            if row["id"] != request.id
            and (
                mine & set((row["subject_pseudonyms"] or {}).get("user_ids") or [])
                or (email and (row["subject_pseudonyms"] or {}).get("email") == email)
            )
        ]
        if others:
            out[request.id] = others
    return out


def acknowledgement(request: ErasureRequest, today: datetime.date | None = None) -> dict[str, Any]:
    """The receipt's state for the queue: {"status": sent|due|late|none, "at": date or None}."""
    today = today or timezone.localdate()
    if request.acknowledged_at:
        return {"status": "sent", "at": timezone.localdate(request.acknowledged_at)}
    if request.acknowledge_due_at is None or request.state not in OPEN_STATES:
        return {"status": "none", "at": None}
    late = request.acknowledge_due_at < today
    return {"status": "late" if late else "due", "at": request.acknowledge_due_at}


# --- dashboard ---------------------------------------------------------------------------------------------------


def _bars(items: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
    """Rows of a bar chart: label, value and the bar's length in percent of the largest value."""
    rows = list(items)
    top = max((value for _, value in rows), default=0)
    return [
        {"label": label, "value": value, "width": round(100 * value / top, 1) if top else 0}
        for label, value in rows
    ]


def dashboard(*, today: datetime.date | None = None, user: Any = None) -> dict[str, Any]:
    """The week's figures: open requests by state (scoped ones split into waiting and erasing), due within
    DUE_SOON_DAYS, overdue, received per day over the last WEEK_DAYS, and the share answered on time among
    the requests answered (verified or rejected) in the last ON_TIME_WINDOW_DAYS. A handful of aggregates."""
    today = today or timezone.localdate()
    open_qs = ErasureRequest.objects.filter(state__in=OPEN_STATES)
    counts = open_qs.aggregate(
        received=Count("id", filter=Q(state=State.RECEIVED)),
        scoped=Count("id", filter=Q(state=State.SCOPED, approved_at__isnull=True)),
        erasing=Count("id", filter=Q(state=State.SCOPED, approved_at__isnull=False)),
        deleted=Count("id", filter=Q(state=State.DELETED)),
        failed=Count("id", filter=Q(state=State.FAILED)),
        due_soon=Count(
            "id", filter=Q(due_at__gte=today, due_at__lte=today + datetime.timedelta(days=DUE_SOON_DAYS))
        ),
        overdue=Count("id", filter=Q(due_at__lt=today)),
        unassigned=Count("id", filter=Q(assigned_to__isnull=True)),
        mine=Count("id", filter=Q(assigned_to=user)) if user is not None else Count("id", filter=Q(pk=None)),
        total=Count("id"),
    )
    by_state = _bars(
        [
            ("received", counts["received"]),
            ("scoped", counts["scoped"]),
            ("erasing", counts["erasing"]),
            ("deleted (verifying)", counts["deleted"]),
            ("failed", counts["failed"]),
        ]
    )
    week_start = today - datetime.timedelta(days=WEEK_DAYS - 1)
    per_day = dict(
        ErasureRequest.objects.filter(received_at__date__gte=week_start)
        .annotate(day=TruncDate("received_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    days = [week_start + datetime.timedelta(days=i) for i in range(WEEK_DAYS)]
    received_week = _bars((day.strftime("%a %-d %b"), per_day.get(day, 0)) for day in days)
    since = timezone.now() - datetime.timedelta(days=ON_TIME_WINDOW_DAYS)
    answered = (
        ErasureRequest.objects.filter(state__in=[State.VERIFIED, State.REJECTED])
        .annotate(answered_at=Coalesce("verified_at", "rejected_at"))
        .filter(answered_at__gte=since)
        .aggregate(total=Count("id"), on_time=Count("id", filter=Q(answered_at__date__lte=F("due_at"))))
    )
    rate = round(100 * answered["on_time"] / answered["total"]) if answered["total"] else None
    return {
        "counts": counts,
        "by_state": by_state,
        "received_week": received_week,
        "received_week_total": sum(row["value"] for row in received_week),
        "answered": answered,
        "on_time_rate": rate,
        "today": today,
        "window_days": ON_TIME_WINDOW_DAYS,
        "due_soon_days": DUE_SOON_DAYS,
    }


# --- a request's audit trail and counts, readable ----------------------------------------------------------------

HASH_LENGTH = 64


def _readable(value: Any) -> tuple[str, str]:
    """(text, title): a value as a person reads it; a keyed hash shortened, its full form in the title."""
    if value is None or value == "":
        return "—", ""
    if isinstance(value, bool):
        return ("yes" if value else "no"), ""
    if isinstance(value, str) and len(value) == HASH_LENGTH and all(c in "0123456789abcdef" for c in value):
        return f"{value[:10]}…", value
    if isinstance(value, list | tuple):
        parts = [_readable(v) for v in value]
        if not parts:
            return "none", ""
        return ", ".join(text for text, _ in parts), " ".join(title for _, title in parts if title)
    return str(value), ""


def _pairs(data: Any, prefix: str = "") -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if not isinstance(data, dict):
        text, title = _readable(data)
        return [{"key": prefix or "value", "value": text, "title": title}]
    # jsonb keeps keys by length, then bytes: the state first, the rest alphabetically reads better
    for key, value in sorted(data.items(), key=lambda item: (item[0] != "state", item[0])):
        label = f"{prefix}{str(key).replace('_', ' ')}"
        if isinstance(value, dict) and value:
            out.extend(_pairs(value, f"{label} › "))
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            # e.g. one entry per store: named by the entry's own name where it has one, else numbered
            for index, item in enumerate(value, start=1):
                name = item.get("store") or item.get("name") or index
                rest = {k: v for k, v in item.items() if item.get(k) != name or k not in ("store", "name")}
                out.extend(_pairs(rest, f"{label} › {name} › "))
        else:
            text, title = _readable(value if not isinstance(value, dict) else None)
            out.append({"key": label, "value": text, "title": title})
    return out


def audit_rows(entries: Iterable[AuditEntry]) -> list[dict[str, Any]]:
    """The request's audit entries numbered 1, 2, 3… (the chain's own ids, shared by every request and the
    auditlog bookkeeping, would look like missing entries), each with its data as key/value pairs."""
    return [
        {"number": number, "entry": entry, "pairs": _pairs(entry.data or {})}
        for number, entry in enumerate(entries, start=1)
    ]


def breakdown(request: ErasureRequest) -> dict[str, Any]:
    """The scoped counts per user id, agent and run, with labels a reader can follow: the identifiers in clear
    while the request holds them; after pseudonymisation "user id 1", "agent 2"… with the keyed hash beside."""
    pseudonymised = bool(request.pseudonymised_at) or not request.subject_user_ids
    user_order = list((request.subject_pseudonyms or {}).get("user_ids") or [])

    def rows(counts: dict[str, int], noun: str, order: list[str] | None = None) -> list[dict[str, Any]]:
        order = order or []

        def position(key: str) -> tuple[bool, int, str]:
            return (key == NONE_KEY, order.index(key) if key in order else len(order), key)

        keys = sorted(counts or {}, key=position)
        out = []
        for index, key in enumerate(keys, start=1):
            if key == NONE_KEY:
                label, hashed = f"(no {noun})", ""
            elif pseudonymised:
                label, hashed = f"{noun} {index}", key
            else:
                label, hashed = key, ""
            out.append({"label": label, "pseudonym": hashed, "count": counts[key], "none": key == NONE_KEY})
        return out

    return {
        "pseudonymised": pseudonymised,
        "by_user": rows(request.scoped_by_user, "user id", user_order),
        "by_agent": rows(request.scoped_by_agent, "agent"),
        "by_run": rows(request.scoped_by_run, "run"),
    }
