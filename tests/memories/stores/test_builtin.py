"""The built-in store behind the connector interface: the same counts as scoping always made, an erasure that is
an engine DeletionJob, verification of what still matches; held memories kept and counted."""

import pytest

from memories.models import DeletionJob, Memory, StoreJob
from memories.services import memories_add
from memories.stores.builtin import BuiltinConnector
from memories.stores.jobs import DurableProgress

pytestmark = pytest.mark.django_db(transaction=True)


def test_count_erase_and_verify_through_the_engine_keeping_held_memories():
    # given: a subject's memories of two agents, one agent's under a hold rule, and a bystander's
    memories_add(texts=["a", "b", "c"], user_id="builtin-subject", agent_id="bot", run_id="r1")
    memories_add(texts=["kept"], user_id="builtin-subject", agent_id="legal")
    memories_add(texts=["other"], user_id="builtin-bystander", agent_id="bot")
    scope = {"user_id": "builtin-subject"}
    holds = [{"user_id": "builtin-subject", "agent_id": "legal"}]
    connector = BuiltinConnector()
    # when counted
    counts = connector.count(scope, holds)
    # then
    assert (counts.total, counts.held) == (4, 1)
    assert counts.by_agent == {"bot": 3, "legal": 1} and counts.by_run == {"r1": 3, "": 1}
    assert connector.test() == (True, "the built-in store answers")
    assert connector.verify(scope, holds) == {"memories": 3}
    # when erased through a durable progress (the engine's own job does the work)
    from erasure.services.stores import builtin_store

    job = StoreJob.objects.create(store=builtin_store(), requested_by="builtin-test", scope=scope)
    assert connector.erase(scope, [], DurableProgress(job, 60)) is True
    # then
    job.refresh_from_db()
    engine_job = DeletionJob.objects.get(id=job.state["deletion_job"])
    assert engine_job.status == "SUCCEEDED" and engine_job.deleted_count == 4
    assert connector.verify(scope, []) == {"memories": 0}
    assert Memory.objects.filter(user_id="builtin-bystander").count() == 1
