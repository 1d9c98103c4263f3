"""A bound on how many list/search queries the web tier runs at once, across all its processes: each takes one of
WEB_FILTER_QUERY_SLOTS transaction-level advisory locks for the length of its query. The filters a client may send
are bounded in size (memories.filters), but a burst of the costliest ones still keeps a backend per concurrent
request busy; on a small machine that starves the erasure workers (bench/hostile.py measures it). A request that
finds every slot taken waits in PostgreSQL (no CPU) up to WEB_FILTER_QUERY_WAIT_MS, then answers 503.
"""

import random
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import OperationalError, connection, transaction

# The first key of the two-key advisory locks of the slots (the second is the slot number): "memq".
SLOT_NAMESPACE = 0x6D656D71


class SlotsBusy(Exception):
    """Every slot stayed taken for WEB_FILTER_QUERY_WAIT_MS."""


@contextmanager
def filter_query_slot() -> Iterator[None]:
    """A transaction holding one slot for its length. Raises SlotsBusy. Side effects: one advisory lock."""
    slots = int(getattr(settings, "WEB_FILTER_QUERY_SLOTS", 0) or 0)
    with transaction.atomic():
        if slots > 0:
            _take(slots)
        yield


def _take(slots: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k FROM generate_series(1, %s) AS k WHERE pg_try_advisory_xact_lock(%s, k) LIMIT 1",
            [slots, SLOT_NAMESPACE],
        )
        if cursor.fetchone():
            return
        wait_ms = int(getattr(settings, "WEB_FILTER_QUERY_WAIT_MS", 5000))
        try:
            with (
                transaction.atomic()
            ):  # a savepoint: the lock timeout's error must not abort the request's transaction
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{max(wait_ms, 1)}ms"])
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", [SLOT_NAMESPACE, random.randint(1, slots)]
                )
        except OperationalError as exc:
            raise SlotsBusy from exc
        cursor.execute("SELECT set_config('lock_timeout', '0', true)")
