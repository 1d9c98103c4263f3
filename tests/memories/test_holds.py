"""Legal holds as rules (memories.holds): a hold keeps every memory of its scope whenever it was written, lifting one
never releases what another active hold covers, and the engine's batch statement is untouched by holds that cannot
cover its job's memories."""

import pytest

from memories.engine import BatchStatement, deletion_job_create, deletion_job_run
from memories.holds import active_hold_scopes, held_count, legal_hold_lift, legal_hold_place
from memories.ids import uuid7
from memories.models import LegalHold, Memory
from memories.pseudonyms import pseudonymise_scope
from memories.services import memories_add, memories_delete_by_ids, memory_update

pytestmark = pytest.mark.django_db


def _hold(scope: dict) -> LegalHold:
    return legal_hold_place(scope=scope, reason="art17_3_e", note="", placed_by="t")


def _erase(scope: dict, *, batch_size: int = 4):
    job = deletion_job_create(kind="filter", scope=scope, requested_by="test", enqueue=False)
    assert deletion_job_run(job_id=job.id, batch_size=batch_size, budget_seconds=60).finished
    job.refresh_from_db()
    return job


def _left(user_id: str) -> set:
    return set(Memory.objects.filter(user_id=user_id).values_list("id", flat=True))


def test_a_memory_written_after_the_hold_is_kept_by_an_erasure():
    # given: a hold on ana's memories with agent "legal", then memories written after it: through the service, by a
    # later metadata change, and one inserted by a path that knows nothing of holds
    before = memories_add(texts=["a", "b"], user_id="ana", agent_id="legal")
    free = memories_add(texts=[f"f{i}" for i in range(9)], user_id="ana", agent_id="bot")
    hold = _hold({"user_id": "ana", "agent_id": "legal"})
    after = memories_add(texts=["c"], user_id="ana", agent_id="legal")
    moved = memories_add(texts=["d"], user_id="ana", agent_id="bot", metadata={"case": "x"})
    _hold({"metadata": {"case": "y"}})
    memory_update(memory=moved[0], metadata={"case": "y"})
    raw = Memory.objects.create(id=uuid7(), text="e", hash="h", user_id="ana", agent_id="legal")

    # when: ana's memories are erased
    job = _erase({"user_id": "ana"})

    # then: every memory of a hold's scope is kept, whenever written, and counted as held
    kept = {m.id for m in before + after + moved} | {raw.id}
    assert _left("ana") == kept
    assert job.deleted_count == len(free) and job.held_count == len(kept)
    assert Memory.objects.get(id=after[0].id).legal_hold_id == hold.id
    assert Memory.objects.get(id=raw.id).legal_hold_id is None  # kept by the rule alone


def test_overlapping_holds_lifting_one_keeps_what_the_other_covers():
    # given: two holds over bo's memories, one on all of them, one on those of run r1
    r1 = memories_add(texts=["r1a", "r1b"], user_id="bo", run_id="r1")
    r2 = memories_add(texts=["r2a", "r2b", "r2c"], user_id="bo", run_id="r2")
    wide = _hold({"user_id": "bo"})
    narrow = _hold({"user_id": "bo", "run_id": "r1"})
    late = memories_add(texts=["r1c"], user_id="bo", run_id="r1")

    # when: the first (wider) hold is lifted
    lifted, released = legal_hold_lift(hold=wide, lifted_by="t")

    # then: only what the second hold does not cover is released; an erasure keeps the rest
    assert released == len(r2)
    assert lifted.scope is None and lifted.scope_pseudonymised == pseudonymise_scope({"user_id": "bo"})
    assert active_hold_scopes() == [{"user_id": "bo", "run_id": "r1"}]
    assert set(Memory.objects.filter(legal_hold=narrow).values_list("id", flat=True)) == {
        m.id for m in r1 + late
    }
    assert held_count({"user_id": "bo"}) == 3
    job = _erase({"user_id": "bo"})
    assert _left("bo") == {m.id for m in r1 + late}
    assert job.deleted_count == 3 and job.held_count == 3

    # and lifting the second releases the rest
    assert legal_hold_lift(hold=narrow, lifted_by="t")[1] == 3
    assert legal_hold_lift(hold=narrow, lifted_by="t")[1] == 0  # lifted already
    assert _erase({"user_id": "bo"}).deleted_count == 3 and not _left("bo")


def test_deleting_by_ids_reports_memories_of_a_holds_scope_as_held():
    memories_add(texts=["x"], user_id="cy")
    _hold({"user_id": "cy"})
    [later] = memories_add(texts=["y"], user_id="cy")
    Memory.objects.filter(id=later.id).update(
        legal_hold=None
    )  # as if written by a path that knows nothing of holds
    [other] = memories_add(texts=["z"], user_id="dee")

    outcome = memories_delete_by_ids(memory_ids=[later.id, other.id], kind="batch", requested_by="t")

    assert outcome == {later.id: "held", other.id: "deleted"}


def test_the_batch_statement_is_unchanged_by_holds_that_cannot_cover_its_memories():
    # given: the statement of a job over eve's memories without any hold
    memories_add(texts=["e"], user_id="eve")
    bare = BatchStatement({"user_id": "eve"}, 100)

    # when: holds exist on other subjects (and one is lifted)
    _hold({"user_id": "fay"})
    _hold({"user_id": ["gus", "hal"], "agent_id": "eve"})
    legal_hold_lift(hold=_hold({"user_id": "eve"}), lifted_by="t")

    # then: the statement is the same SQL (the same plan: legal_hold_id from the index only); a hold that can
    # cover eve's memories adds its scope
    same = BatchStatement({"user_id": "eve"}, 100)
    assert (same.sql, same.params, same.fallback_sql) == (bare.sql, bare.params, bare.fallback_sql)
    _hold({"agent_id": "bot"})
    assert BatchStatement({"user_id": "eve"}, 100).sql != bare.sql
