"""The engine's Celery task in a real worker process."""

import pytest
from django.db import transaction

from memories.engine import deletion_job_create
from memories.models import DeletionJob, Memory
from memories.services import memories_add
from tests.conftest import wait_for


@pytest.mark.worker
def test_worker_runs_an_enqueued_job_to_the_end(celery_worker):
    memories_add(texts=[f"fact {i}" for i in range(50)], user_id="dave")
    with transaction.atomic():
        job = deletion_job_create(kind="filter", scope={"user_id": "dave"}, requested_by="test")

    wait_for(lambda: DeletionJob.objects.get(id=job.id).is_finished, timeout=60, message="job to finish")
    job.refresh_from_db()
    assert job.status == "SUCCEEDED" and job.deleted_count == 50
    assert not Memory.objects.filter(user_id="dave").exists()
