"""The memory store: Mem0-shaped memories, their history, API keys, legal holds, write blocks and deletion jobs.

Memory is deliberately NOT registered with django-auditlog: its LogEntry.changes would keep the text of every
erased memory (DESIGN.md "Proof without residue").
"""

import hashlib
import secrets
import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import Q

from .ids import uuid7

ENTITY_FIELDS = ("user_id", "agent_id", "app_id", "run_id")
ENTITY_TYPES = {"user": "user_id", "agent": "agent_id", "app": "app_id", "run": "run_id"}
SEARCH_CONFIG = "english"


def content_hash(text: str) -> str:
    """Mem0 stores an md5 of the text as the memory's `hash`."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


class LegalHold(models.Model):
    """A hold placed by staff on memories that must be kept despite an erasure (GDPR Art. 17(3))."""

    class Reason(models.TextChoices):
        FREEDOM_OF_EXPRESSION = "art17_3_a", "Art. 17(3)(a) freedom of expression and information"
        LEGAL_OBLIGATION = "art17_3_b", "Art. 17(3)(b) compliance with a legal obligation"
        PUBLIC_HEALTH = "art17_3_c", "Art. 17(3)(c) public interest in public health"
        ARCHIVING = "art17_3_d", "Art. 17(3)(d) archiving, research or statistics"
        LEGAL_CLAIMS = "art17_3_e", "Art. 17(3)(e) establishment, exercise or defence of legal claims"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    note = models.TextField(blank=True)
    # The hold's rule (memories.holds): the scope it keeps, in clear while the hold is active (the hold is the legal
    # basis for keeping it), dropped when it is lifted; NULL too for holds placed before holds were rules.
    scope = models.JSONField(null=True, blank=True)
    # The same scope pseudonymised (keyed hashes of entity ids), kept after the lift, so the hold record itself
    # never becomes residue of an erased subject.
    scope_pseudonymised = models.JSONField(default=dict)
    placed_by = models.CharField(max_length=150)
    placed_at = models.DateTimeField(auto_now_add=True)
    memories_held = models.PositiveIntegerField(default=0)
    lifted_by = models.CharField(max_length=150, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-placed_at"]

    def __str__(self) -> str:
        return f"hold {self.id} ({self.reason})"

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None


class Memory(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    text = models.TextField()
    hash = models.CharField(max_length=32)
    user_id = models.CharField(max_length=255, null=True, blank=True)
    agent_id = models.CharField(max_length=255, null=True, blank=True)
    app_id = models.CharField(max_length=255, null=True, blank=True)
    run_id = models.CharField(max_length=255, null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    categories = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    immutable = models.BooleanField(default=False)
    expiration_date = models.DateField(null=True, blank=True)
    legal_hold = models.ForeignKey(
        LegalHold, null=True, blank=True, on_delete=models.SET_NULL, related_name="memories"
    )
    # True once a MemoryHistory row exists for it (set by a trigger on the history table, whoever inserts; see
    # migration 0004): the engine purges history only for these, so deleting never-updated memories (most)
    # costs no history lookup.
    has_history = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("text", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        db_table = "memories_memory"
        indexes = [
            # Entity filters and the engine's keyset batches: (entity, id) so "WHERE user_id = ? AND id > ?
            # ORDER BY id" is one index range scan whatever the store's size. They carry what the engine's batch
            # selection needs besides the id (held? history rows?), so it reads the index only.
            *(
                models.Index(
                    fields=[column, "id"], include=["legal_hold", "has_history"], name=f"memory_{column}_idx"
                )
                for column in ENTITY_FIELDS
            ),
            models.Index(fields=["created_at"], name="memory_created_at_idx"),
            models.Index(fields=["updated_at"], name="memory_updated_at_idx"),
            models.Index(
                fields=["expiration_date"],
                name="memory_expiration_idx",
                condition=Q(expiration_date__isnull=False),
            ),
            models.Index(
                fields=["legal_hold"], name="memory_legal_hold_idx", condition=Q(legal_hold__isnull=False)
            ),
            GinIndex(fields=["metadata"], name="memory_metadata_gin", opclasses=["jsonb_path_ops"]),
            GinIndex(fields=["categories"], name="memory_categories_gin"),
            GinIndex(fields=["search_vector"], name="memory_search_gin"),
        ]

    def __str__(self) -> str:  # never the text: str() ends up in logs and admin messages
        return f"memory {self.id}"


class MemoryHistory(models.Model):
    """Mem0's history events that cannot be derived: UPDATE events (old and new text). A memory's ADD event is
    derived from the memory itself (its creation time, and its text before the first UPDATE), and its DELETE event
    from the MemoryTombstone the engine writes (memories.selectors.memory_history), so adding a memory writes one
    row and deleting one rewrites none. When the engine deletes a memory, its rows here (which hold text) are
    deleted in the same transaction. ADD and DELETE rows written by earlier versions are still read."""

    class Event(models.TextChoices):
        ADD = "ADD"
        UPDATE = "UPDATE"
        DELETE = "DELETE"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    memory_id = models.UUIDField()
    event = models.CharField(max_length=6, choices=Event.choices)
    old_memory = models.TextField(null=True, blank=True)
    new_memory = models.TextField(null=True, blank=True)
    categories = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "memories_history"
        # memory_id only: a memory has a handful of events; ordering them is a tiny sort.
        indexes = [models.Index(fields=["memory_id"], name="history_memory_id_idx")]

    def __str__(self) -> str:
        return f"{self.event} {self.memory_id}"


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """An API key, stored only as a sha256 of the key (keys are 256-bit random, so a fast hash is enough)."""

    PREFIX = "m0-"

    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=12, help_text="First characters, to recognise a key in lists.")
    key_hash = models.CharField(max_length=64, unique=True)
    is_staff = models.BooleanField(default=False, help_text="Privacy-team key: may use the Erasure API.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash_key(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()

    @classmethod
    def generate(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    # DRF treats request.user as a user object; these make an ApiKey usable in that place.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def username(self) -> str:
        return f"apikey:{self.name}"


class WriteBlock(models.Model):
    """Refuses new memories for a user_id, known only by its keyed hash: while an erasure runs (kind=erasure)
    or after an erasure with suppression (kind=suppression). Owned by the memory store so that `memories` never
    imports `erasure`; the erasure app places and lifts blocks through memories.services."""

    class Kind(models.TextChoices):
        ERASURE = "erasure", "erasure in progress"
        SUPPRESSION = "suppression", "suppressed after erasure"

    user_id_hmac = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What the erasure was narrowed to, as keyed hashes ({"agent_id": [hmac…], "app_id", "run_id",
    # "metadata": {hmac(key): hmac(repr(value))}}): the block refuses only writes inside it. Empty: every write.
    scope_pseudonymised = models.JSONField(default=dict, blank=True)
    reference = models.CharField(max_length=40, help_text="The erasure request reference that placed it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_id_hmac", "kind", "reference"], name="writeblock_unique"),
        ]
        indexes = [models.Index(fields=["user_id_hmac"], name="writeblock_hmac_idx")]

    def __str__(self) -> str:
        return f"{self.kind} block ({self.reference})"


class DeletionJob(models.Model):
    """One run of the deletion engine. Its counters and keyset cursor are updated in the same transaction as each
    batch (with the batch's tombstone), so a job killed at any instant resumes with exact counts; `digest` is set
    when it ends (sha256 of the deleted ids in ascending order)."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"

    class Kind(models.TextChoices):
        FILTER = "filter", "DELETE /v1/memories/"
        ENTITY = "entity", "DELETE /v2/entities/"
        BATCH = "batch", "DELETE /v1/batch/"
        SINGLE = "single", "DELETE /v1/memories/{id}/"
        EXPIRY = "expiry", "expiry sweep"
        ERASURE = "erasure", "erasure request"
        RETENTION = "retention", "retention policy"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # The scope in clear while the job runs (the engine needs the ids); replaced by its pseudonymised form when
    # the job ends, so a finished job keeps no subject identifier.
    scope = models.JSONField(null=True, blank=True)
    scope_pseudonymised = models.JSONField(default=dict)
    # Who asked: an erasure request reference, an API key name, "beat". Never a subject id.
    requested_by = models.CharField(max_length=150, blank=True)
    deleted_count = models.BigIntegerField(default=0)
    history_purged_count = models.BigIntegerField(default=0)
    held_count = models.BigIntegerField(default=0)
    batches = models.PositiveIntegerField(default=0)
    passes = models.PositiveIntegerField(default=0)
    pass_deleted_count = models.BigIntegerField(
        default=0
    )  # deleted by the current pass (a straggler pass ends the job when 0)
    cursor = models.UUIDField(null=True, blank=True)
    # Lanes: a large job's first pass is split into child jobs over consecutive id ranges, run side by side by
    # the parent's run (memories.engine); a lane ends at cursor_end (inclusive; None: the end of the scope).
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="lanes")
    cursor_end = models.UUIDField(null=True, blank=True)
    digest = models.CharField(max_length=64, default="0" * 64)
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["status", "heartbeat_at"],
                name="deletionjob_open_idx",
                condition=Q(status__in=["PENDING", "RUNNING"]),
            ),
            # An erasure request's jobs (its deletion job and any final sweep) by its reference.
            models.Index(
                fields=["requested_by"], name="deletionjob_erasure_idx", condition=Q(kind="erasure")
            ),
            # The jobs that still hold a clear scope (open or failed ones; a finished job's is dropped): what a
            # verification looks through for the subject's identifiers, however many jobs have finished before.
            models.Index(fields=["id"], name="deletionjob_clear_scope_idx", condition=Q(scope__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"deletion job {self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class MemoryTombstone(models.Model):
    """The DELETE events: one row per engine batch holding the ids it deleted (ascending), written in the batch's
    transaction. GET /v1/memories/{id}/history/ of a deleted memory finds its event through the GIN index on
    `ids` (rows not yet indexed are read directly); the job's deleted-ids digest and the erasure verification read
    the job's rows. Random or time-ordered UUIDs only: no text, no subject identifier. Kept (they are the history
    of the deleted memories)."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(DeletionJob, on_delete=models.PROTECT, related_name="tombstones")
    batch = models.PositiveIntegerField()
    ids = ArrayField(models.UUIDField())
    # Those of `ids` that had history rows (has_history) when deleted: the only ones whose history a verification
    # needs to look up, as no history row can be written for a memory that no longer exists (the trigger of
    # migration 0007). NULL on tombstones written before: all their ids are looked up.
    history_ids = ArrayField(models.UUIDField(), null=True, blank=True)
    created_at = models.DateTimeField()
    # A batch writes its tombstone unindexed; the beat task memories_tombstones_merge sets this a few seconds later,
    # which adds the row to the (partial) GIN index. Two lanes of a job inserting 10,000 index entries per batch
    # into one GIN pending list waited on each other for its lock; the index is only needed by lookups.
    indexed = models.BooleanField(default=False, db_default=False)

    class Meta:
        db_table = "memories_tombstone"
        # New entries wait in the GIN pending list (fastupdate) of up to 64 MB (about 3 million ids) instead of
        # the default 4 MB, and the beat task merges them. A lookup also reads the pending list, and the rows not
        # indexed yet (through tombstone_unindexed_idx), which that task keeps few.
        indexes = [
            GinIndex(
                fields=["ids"],
                name="tombstone_ids_gin",
                fastupdate=True,
                gin_pending_list_limit=65536,
                condition=Q(indexed=True),
            ),
            models.Index(fields=["id"], name="tombstone_unindexed_idx", condition=Q(indexed=False)),
        ]
        constraints = [models.UniqueConstraint(fields=["job", "batch"], name="tombstone_job_batch_unique")]

    def __str__(self) -> str:
        return f"tombstone of {self.job_id} batch {self.batch}"


# The store registry and the connected stores' jobs live beside their connectors (memories/stores/models.py).
from .stores.models import Store, StoreJob, StoreJobId  # noqa: E402,F401
