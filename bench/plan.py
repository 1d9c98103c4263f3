"""Prints the plan of the engine's fast batch statement, as a run executes it (prepared, generic plan), for a batch
from the middle of a user's memories in the database named by DATABASE_URL.

python -m bench.plan USER_ID
"""

import os
import re
import sys
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ.setdefault("ERASURE_QUIET_DEV_KEY", "1")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from memories.engine.batch import BatchStatement  # noqa: E402
from memories.engine.keyset import CURSOR  # noqa: E402
from memories.models import Memory  # noqa: E402


def main(user_id: str) -> None:
    ids = Memory.objects.filter(user_id=user_id).order_by("id").values_list("id", flat=True)
    middle = ids[ids.count() // 2]
    statement = BatchStatement({"user_id": user_id}, 10_000)
    numbers = iter(range(1, 1000))
    sql = re.sub(r"%s", lambda _: f"${next(numbers)}", statement.sql)
    params = [*(middle if p == CURSOR else p for p in statement.params), uuid.uuid4(), 1]
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cur.execute(f"PREPARE bench_batch AS {sql}")
        cur.execute(f"EXPLAIN EXECUTE bench_batch({', '.join(['%s'] * len(params))})", params)
        print("\n".join(row[0] for row in cur.fetchall()))
        transaction.set_rollback(True)


if __name__ == "__main__":
    main(sys.argv[1])
