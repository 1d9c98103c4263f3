"""Deleted-ids digests: sha256 over a job's deleted ids in ascending order, 16 bytes each, the same whatever the
batch boundaries, interruptions or passes. Computed as the batches arrive when a run saw them all in order, else
from the job's tombstones."""

import hashlib
import uuid

from django.db import connection

from ..models import DeletionJob
from .keyset import TOMBSTONE_TABLE

EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()


def ids_digest(ids: list[uuid.UUID]) -> str:
    """sha256 over the ids in ascending order, 16 bytes each (UUID.bytes): what a job's and a certificate's
    deleted-ids digest is. Anyone holding the list of ids can recompute it."""
    return hashlib.sha256(b"".join(memory_id.bytes for memory_id in sorted(set(ids)))).hexdigest()


def jobs_ids_digest(*, job_ids: list[uuid.UUID]) -> str:
    """ids_digest over everything these jobs deleted, computed in SQL from their tombstones."""
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT encode(sha256(coalesce(string_agg(uuid_send(u), ''::bytea ORDER BY u), ''::bytea)), 'hex')
                FROM (SELECT DISTINCT u FROM {TOMBSTONE_TABLE} t, unnest(t.ids) AS u WHERE t.job_id = ANY(%s)) d""",
            [list(job_ids)],
        )
        (digest,) = cur.fetchone()
    return str(digest)


class RunningDigest:
    """ids_digest of a job, fed batch by batch in this process. Valid only while it has seen every batch of the
    job (the run started the job) and the ids arrived in ascending order (no straggler behind the cursor);
    otherwise the job's digest is computed from its tombstones."""

    def __init__(self, *, complete: bool) -> None:
        self.hash = hashlib.sha256()
        self.valid = complete
        self.last = b""

    def copy(self) -> "RunningDigest":
        other = RunningDigest(complete=self.valid)
        other.hash, other.last = self.hash.copy(), self.last
        return other

    def feed(self, packed: bytes) -> None:
        if not packed or not self.valid:
            return
        if packed[:16] <= self.last:
            self.valid = False
            return
        self.hash.update(packed)
        self.last = packed[-16:]

    def digest(self, job: DeletionJob) -> str:
        if not job.deleted_count:
            return EMPTY_DIGEST
        if self.valid:
            return self.hash.hexdigest()
        return jobs_ids_digest(job_ids=[job.id, *job.lanes.values_list("id", flat=True)])
