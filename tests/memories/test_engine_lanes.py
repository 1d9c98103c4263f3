"""Lanes: a job whose scope holds more than one batch hands its first pass to DELETION_LANES child jobs over
consecutive id ranges, run side by side in threads (each with its own database connection), then makes its
straggler pass. Real PostgreSQL, committed data (threads see only committed rows), no worker."""

import pytest
from django.db import connection, transaction

from memories.engine import BatchStatement, deletion_job_create, deletion_job_run, deletion_jobs_resume_stale
from memories.engine.lanes import scope_settle_wait
from memories.models import DeletionJob, Memory, MemoryTombstone
from memories.selectors import deletion_job_get
from memories.services import legal_hold_place, memories_add, memory_update
from memories.signals import deletion_job_finished
from memories.tasks import deletion_job_run_task
from tests.memories.deletion_checks import assert_deleted_exactly, lanes_of

pytestmark = pytest.mark.django_db(transaction=True)


def _subject(user_id: str, n: int, *, updated_every: int = 5) -> list[Memory]:
    mine = memories_add(texts=[f"{user_id} fact {i}" for i in range(n)], user_id=user_id)
    for memory in mine[::updated_every]:
        memory_update(memory=memory, text=f"{user_id} changed {memory.id}")
    memories_add(texts=["someone else"] * 5, user_id=f"not-{user_id}")
    return mine


def _new_job(scope: dict) -> DeletionJob:
    with transaction.atomic():
        return deletion_job_create(kind="filter", scope=scope, requested_by="test", enqueue=False)


def test_a_large_job_splits_into_lanes_that_delete_disjoint_ranges_with_exact_counts_and_digest(settings):
    settings.DELETION_LANES = 2
    mine = _subject("lana", 230)
    job = _new_job({"user_id": "lana"})

    result = deletion_job_run(job_id=job.id, batch_size=20, budget_seconds=60)

    assert result.finished
    lanes = lanes_of(job)
    assert len(lanes) == 2 and all(lane.parent_id == job.id for lane in lanes)
    # the lanes cover consecutive ranges of the scope: the first ends where the second starts
    assert lanes[0].cursor_end is not None and lanes[1].cursor_end is None
    counts = [lane.deleted_count for lane in lanes]
    assert sum(counts) == 230 and min(counts) > 0
    # every id is recorded once; the job's counters include its lanes' and its digest covers them (in order)
    assert_deleted_exactly(job, [m.id for m in mine], history_purged=46)
    assert Memory.objects.filter(user_id="not-lana").count() == 5


def test_lanes_interrupted_by_the_time_budget_resume_to_exact_counts(settings):
    # given: a zero budget, so every run does one transaction per lane and stops
    settings.DELETION_LANES = 3
    mine = _subject("luz", 157, updated_every=3)
    held = mine[100:104]
    legal_hold_place(
        scope={"memory_ids": [str(m.id) for m in held]}, reason="art17_3_e", note="", placed_by="t"
    )
    job = _new_job({"user_id": "luz"})

    # when
    runs = 0
    while not deletion_job_run(job_id=job.id, batch_size=10, budget_seconds=0).finished:
        runs += 1
        assert runs < 200
        # the job's progress is what its lanes deleted so far, batch by batch (their counts are added to the
        # job's own when they have all finished)
        job.refresh_from_db()
        progress = deletion_job_get(job_id=job.id)
        assert progress is not None
        assert progress.deleted_count == sum(lane.deleted_count for lane in lanes_of(job))
        assert job.deleted_count == (progress.deleted_count if job.passes else 0)

    # then: resumed many times, the job and its three lanes add up exactly (the digest from the tombstones)
    assert runs >= 3 and len(lanes_of(job)) == 3
    deleted = [m.id for m in mine if m not in held]
    purged = sum(1 for m in mine[::3] if m not in held)
    assert_deleted_exactly(job, deleted, history_purged=purged, held=4)
    assert set(Memory.objects.filter(user_id="luz").values_list("id", flat=True)) == {m.id for m in held}


def test_a_job_of_one_batch_has_no_lanes_and_lanes_are_never_swept_on_their_own(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.DELETION_LANES = 2
    small = _subject("sol", 15)
    job = _new_job({"user_id": "sol"})
    assert deletion_job_run(job_id=job.id, batch_size=20, budget_seconds=60).finished
    assert lanes_of(job) == []
    assert_deleted_exactly(job, [m.id for m in small], history_purged=3)

    # a job interrupted while its lanes run: only the job itself is re-sent by the sweeper
    _subject("sid", 100)
    job = _new_job({"user_id": "sid"})
    deletion_job_run(job_id=job.id, batch_size=10, budget_seconds=0)
    deletion_job_run(job_id=job.id, batch_size=10, budget_seconds=0)
    assert len(lanes_of(job)) == 2
    DeletionJob.objects.update(heartbeat_at=None)
    sent: list = []
    monkeypatch.setattr(deletion_job_run_task, "delay", lambda job_id, ticket: sent.append(job_id))
    with django_capture_on_commit_callbacks(execute=True):
        assert deletion_jobs_resume_stale(stale_seconds=0) == 1
    assert sent == [str(job.id)]
    assert MemoryTombstone.objects.filter(job__parent=job).exists()


def test_lanes_of_a_scope_with_several_user_ids(settings):
    settings.DELETION_LANES = 2
    ana, bo = _subject("ana", 70), _subject("bo", 70)
    job = _new_job({"user_id": ["ana", "bo"]})

    assert deletion_job_run(job_id=job.id, batch_size=20, budget_seconds=60).finished

    assert len(lanes_of(job)) == 2
    assert_deleted_exactly(job, [m.id for m in ana + bo], history_purged=28)
    assert Memory.objects.filter(user_id__in=["not-ana", "not-bo"]).count() == 10


def test_a_transaction_that_fails_on_a_row_changed_after_its_snapshot_is_redone_carefully(
    settings, monkeypatch, caplog
):
    # given: three batches of pia's memories (some updated, so with history), and a fast statement that, on the
    # second batch, fails as a REPEATABLE READ transaction does when one of its rows was updated, held or deleted
    # by a transaction that committed after its snapshot (serialization failure)
    settings.DELETION_LANES = 1
    with connection.cursor() as cur:
        cur.execute(
            "CREATE FUNCTION pg_temp.changed_meanwhile() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure'; END $$"
        )
    mine = _subject("pia", 25)
    job = _new_job({"user_id": "pia"})
    seen: list = []
    run = BatchStatement.run

    def run_failing_the_second(self, job, **kwargs):
        seen.append((self, kwargs["repeatable_read"], self.careful))
        good = self.sql
        if len(seen) == 2:
            self.sql = good + " WHERE pg_temp.changed_meanwhile()"
        try:
            return run(self, job, **kwargs)
        finally:
            self.sql = good

    monkeypatch.setattr(BatchStatement, "run", run_failing_the_second)

    # when
    result = deletion_job_run(job_id=job.id, batch_size=10, budget_seconds=60)

    # then: the second batch's transaction rolled back and was redone by the careful statement (in READ COMMITTED);
    # the other batches were fast; the job's counts, tombstones and digest are exact
    assert result.finished and "redone by the careful statement" in caplog.text
    statement = seen[0][0]
    assert statement.fallbacks == 1 and all(s is statement for s, _, _ in seen)
    assert [careful for _, _, careful in seen] == [False, False, True, False, False]
    assert all(repeatable for _, repeatable, _ in seen)
    assert_deleted_exactly(job, [m.id for m in mine], history_purged=5)
    assert sorted(t.batch for t in MemoryTombstone.objects.filter(job=job)) == [1, 2, 3]


def test_a_run_leaves_its_session_as_it_found_it_and_works_without_prepared_statements(settings):
    # given: a connection whose prepared statements are off (DATABASE_PREPARED_STATEMENTS=0, behind a pooler)
    settings.DELETION_LANES = 1
    mine = _subject("ola", 25)
    job = _new_job({"user_id": "ola"})
    connection.ensure_connection()
    raw = connection.connection
    threshold, raw.prepare_threshold = raw.prepare_threshold, None
    try:
        # when
        assert deletion_job_run(job_id=job.id, batch_size=10, budget_seconds=60).finished

        # then: the job is exact; nothing was prepared and the session's settings are as before
        assert_deleted_exactly(job, [m.id for m in mine], history_purged=5)
        with connection.cursor() as cur:
            cur.execute("SELECT count(*), current_setting('plan_cache_mode') FROM pg_prepared_statements")
            assert cur.fetchone() == (0, "auto")
        assert raw.isolation_level is None
    finally:
        raw.prepare_threshold = threshold

    # and with prepared statements on, a run prepares its batch statement and still restores the session
    other = _new_job({"user_id": "not-ola"})
    assert deletion_job_run(job_id=other.id, batch_size=10, budget_seconds=60).finished
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) > 0, current_setting('plan_cache_mode') FROM pg_prepared_statements")
        assert cur.fetchone() == (True, "auto")
    assert raw.isolation_level is None


def test_batches_run_in_repeatable_read_and_the_job_ends_in_read_committed(settings, monkeypatch):
    # The end of a job runs receivers that chain audit entries onto the latest one (an erasure request's move to
    # `deleted`): they must see what other transactions committed, so the job ends in READ COMMITTED, in a
    # transaction of its own; its batches run in REPEATABLE READ (the fast statement needs it).
    settings.DELETION_LANES = 1
    _subject("rea", 25)
    job = _new_job({"user_id": "rea"})
    seen: list[tuple[str, str]] = []

    def isolation() -> str:
        with connection.cursor() as cur:
            cur.execute("SHOW transaction_isolation")
            return cur.fetchone()[0]

    run = BatchStatement.run

    def run_noting(self, job, **kwargs):
        seen.append(("batch", isolation()))
        return run(self, job, **kwargs)

    def finish_noting(sender, job, **kwargs):
        seen.append(("finish", isolation()))

    monkeypatch.setattr(BatchStatement, "run", run_noting)
    deletion_job_finished.connect(finish_noting, dispatch_uid="test-finish-noting")
    try:
        assert deletion_job_run(job_id=job.id, batch_size=10, budget_seconds=60).finished
    finally:
        deletion_job_finished.disconnect(dispatch_uid="test-finish-noting")

    assert seen[-1] == ("finish", "read committed")
    assert {what for what in seen[:-1]} == {("batch", "repeatable read")} and len(seen) >= 4


def _heap_fetches(user_ids: list[str]) -> int:
    """Heap fetches of the first index-only count of these users' memories (EXPLAIN ANALYZE runs the query)."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        cur.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM memories_memory WHERE user_id = ANY(%s)",
            [user_ids],
        )
        plan = cur.fetchone()[0][0]["Plan"]
    while "Heap Fetches" not in plan:
        (plan,) = plan["Plans"]
    assert plan["Node Type"] == "Index Only Scan"
    return int(plan["Heap Fetches"])


def test_after_its_lanes_a_job_reads_the_deleted_scope_once_so_later_reads_skip_its_dead_entries(settings):
    # given: two subjects deleted by a job in lanes, and a third one deleted by a bare DELETE
    settings.DELETION_LANES = 2
    _subject("ines", 120), _subject("ivo", 80), _subject("ida", 100)
    job = _new_job({"user_id": ["ines", "ivo"]})
    with connection.cursor() as cur:
        cur.execute("DELETE FROM memories_memory WHERE user_id = 'ida'")

    # when: the job runs (its lanes finish, then a lane thread reads the scope while the job ends)
    assert deletion_job_run(job_id=job.id, batch_size=20, budget_seconds=60).finished
    assert len(lanes_of(job)) == 2 and scope_settle_wait(timeout=30)

    # then: a count of the job's subjects passes their index entries without visiting the heap (marked dead), while
    # the first count of the subject deleted the bare way still visits each of its deleted rows
    assert _heap_fetches(["ines", "ivo"]) == 0
    assert _heap_fetches(["ida"]) == 100
    assert _heap_fetches(["ida"]) == 0  # that first count marked them
    assert not Memory.objects.filter(user_id__in=["ines", "ivo", "ida"]).exists()
