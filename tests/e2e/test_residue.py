"""No residue: after an erasure reaches `verified`, none of the subject's canary strings (user ids, e-mail, memory
texts, agent/run ids, metadata, categories) is left in any column of any table, any Redis key or value of this run,
or any log line of the worker and of this process.

Deliberately outside the scan: the outgoing e-mails. The receipt and completion mails legitimately go to the
subject's own address (the receipt is asserted below); they are the subject's copy, not ours.

Each scan has a positive control (a canary planted on purpose in a bystander's memory, a Redis message and a log
line) so that a scan that silently reads nothing fails instead of passing.
"""

import base64
import binascii
import json
import logging
import os
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core import mail
from django.db import connection
from django.urls import Resolver404, resolve

from config.celery import app as celery_app
from erasure.notices_models import SubjectNotice
from memories.engine import ids_digest
from memories.models import DeletionJob, Memory, MemoryTombstone
from memories.services import memories_add, memory_update
from tests.e2e.helpers import canary, request_through_api, request_tombstone_ids, wait_closed

RUN = os.environ["ERASURE_TEST_RUN"]
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "ARRAY", "tsvector", "bytea")
LOGGERS = ("", "django", "django.request", "django.server", "celery", "kombu", "memories", "erasure")


# --- the scanners -------------------------------------------------------------------------------------------


def _token(value: str) -> str:
    """The random part of a canary: survives case folding, tokenising (tsvector) and splitting at '@'."""
    return value.rsplit("-", 1)[-1].split("@")[0].lower()


def scan_database(canaries: dict[str, str]) -> tuple[list[str], list[str]]:
    """Every text-like column (text, varchar, char, json, jsonb, arrays, tsvector, bytea) of every base table of
    every non-system schema, cast to text and searched for each canary. Returns the hits ('label: table
    schema.table column column') and the columns scanned ('schema.table.column')."""
    tokens = {_token(v): label for label, v in canaries.items()}
    hits: list[str] = []
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT c.table_schema, c.table_name, c.column_name, c.data_type
            FROM information_schema.columns c
            JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE t.table_type = 'BASE TABLE'
              AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
              AND c.data_type = ANY(%s)
            ORDER BY 1, 2, 3
            """,
            [list(TEXT_TYPES)],
        )
        columns = cur.fetchall()
        assert len(columns) > 20, columns  # the scan really saw the schema
        for schema, table, column, data_type in columns:
            value = f'"{column}"::text' if data_type != "bytea" else f"encode(\"{column}\", 'escape')"
            cur.execute(
                f"""
                SELECT tok FROM unnest(%s::text[]) AS tok
                WHERE EXISTS (SELECT 1 FROM "{schema}"."{table}" WHERE position(tok IN lower({value})) > 0)
                """,
                [list(tokens)],
            )
            hits += [f"{tokens[tok]}: table {schema}.{table} column {column}" for (tok,) in cur.fetchall()]
    return hits, [f"{schema}.{table}.{column}" for schema, table, column, _type in columns]


def _expand(raw: bytes) -> str:
    """A Redis value as text, plus every base64 payload found inside it decoded (kombu keeps task bodies in
    base64 inside JSON envelopes, so a plain substring search would miss a task argument)."""
    text = raw.decode("utf-8", errors="replace")
    parts = [text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and len(node) >= 8:
            try:
                decoded = base64.b64decode(node, validate=True)
            except (binascii.Error, ValueError):
                return
            parts.append(_expand(decoded))

    try:
        walk(json.loads(text))
    except ValueError:
        pass
    return "\n".join(parts)


def redis_values(client: redis.Redis, key: bytes) -> list[bytes]:
    kind = client.type(key).decode()
    if kind == "string":
        return [client.get(key) or b""]
    if kind == "list":
        return list(client.lrange(key, 0, -1))
    if kind == "hash":
        return [item for pair in client.hgetall(key).items() for item in pair]
    if kind == "set":
        return list(client.smembers(key))
    if kind == "zset":
        return [member for member, _score in client.zrange(key, 0, -1, withscores=True)]
    if kind == "stream":
        return [json.dumps(fields, default=repr).encode() for _id, fields in client.xrange(key)]
    return []  # "none": expired between SCAN and TYPE


def scan_redis(canaries: dict[str, str], url: str) -> tuple[list[str], int]:
    """Every key under this run's prefixes (Celery queue and bindings, unacked hashes, cache keys), its name and
    every value of whatever type. Returns the hits and how many keys were read."""
    client = redis.Redis.from_url(url)
    tokens = {_token(v): label for label, v in canaries.items()}
    hits: list[str] = []
    keys = set(client.scan_iter(match=f"*{RUN}*", count=1000))
    for key in sorted(keys):
        text = key.decode(errors="replace") + "\n" + "\n".join(_expand(v) for v in redis_values(client, key))
        text = text.lower()
        hits += [
            f"{label}: redis key {key.decode(errors='replace')}"
            for tok, label in tokens.items()
            if tok in text
        ]
    return hits, len(keys)


def scan_text(canaries: dict[str, str], text: str, where: str) -> list[str]:
    text = text.lower()
    return [f"{label}: {where}" for label, v in canaries.items() if _token(v) in text]


def caplog_text(records: list[logging.LogRecord]) -> str:
    """Each record's message, arguments, extras and exception, as a JSON handler would serialise them."""
    lines = []
    for record in records:
        fields = {k: v for k, v in record.__dict__.items() if k not in ("msg", "args")}
        lines.append(record.getMessage() + " " + repr(record.args) + " " + repr(fields))
    return "\n".join(lines)


# --- the test -----------------------------------------------------------------------------------------------


@pytest.mark.worker
def test_no_canary_of_the_subject_survives_a_verified_erasure(staff_api, api, start_worker, caplog):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    # given: a subject whose every identifier and text is a unique canary
    c = {
        "user_id": canary("user"),
        "user_id_alias": canary("alias"),
        "email": canary("mail") + "@example.test",
        "agent_id": canary("agent"),
        "run_id": canary("run"),
        "metadata": canary("meta"),
        "category": canary("cat"),
        **{f"text_{i}": canary("memory") for i in range(5)},
        "updated_text": canary("updated"),
    }
    controls = {
        "control_db": canary("bystander"),
        "control_redis": canary("queued"),
        "control_log": canary("log"),
    }
    worker = start_worker("residue", extra_env={"DELETION_BATCH_SIZE": "2", "LOG_LEVEL": "DEBUG"})
    subject = memories_add(
        texts=[f"I live at {c[f'text_{i}']}" for i in range(5)],
        user_id=c["user_id"],
        agent_id=c["agent_id"],
        run_id=c["run_id"],
        metadata={"city": c["metadata"], "n": 1},
        categories=[c["category"]],
    )
    [alias] = memories_add(
        texts=[f"alias says {c['text_0']}"], user_id=c["user_id_alias"], agent_id=c["agent_id"]
    )
    # edits: their UPDATE history rows hold the old and the new text (two rows for the erasure to purge)
    memory_update(memory=subject[0], text=f"I moved to {c['updated_text']}")
    memory_update(memory=alias, text=f"alias now says {c['updated_text']}")
    via_http = _add_through_memory_api(api, c)
    # the database control: in a memory's text (and search vector) and, through an edit, in a history row
    [bystander] = memories_add(texts=["bystander, not yet edited"], user_id="bystander")
    memory_update(memory=bystander, text=f"bystander {controls['control_db']}")

    # when: the full erasure through the Erasure API, with a real worker
    url, scoped = request_through_api(
        staff_api, user_ids=[c["user_id"], c["user_id_alias"]], email=c["email"], suppress=True
    )
    assert scoped["counts"]["scoped_total"] == 6 + via_http
    detail = wait_closed(staff_api, url, timeout=90)
    assert detail["state"] == "verified", detail
    assert detail["counts"]["deleted_count"] == 6 + via_http
    assert detail["counts"]["history_purged_count"] == 2
    # the DELETE events: the request's tombstones (several batches of 2) hold each deleted id once, and the
    # digest covers exactly them; the scan below reads these rows too
    tombstone_ids = request_tombstone_ids(detail["reference"])
    assert len(tombstone_ids) == len(set(tombstone_ids)) == 6 + via_http
    assert {m.id for m in [*subject, alias]} <= set(tombstone_ids)
    assert detail["counts"]["deleted_ids_digest"] == ids_digest(tombstone_ids)
    assert MemoryTombstone.objects.filter(ids__overlap=tombstone_ids).count() >= 3
    worker.stop()  # flushes and closes its log; no task is left to run

    # positive controls: what each scan must find
    celery_app.send_task("residue.control", args=[controls["control_redis"]], queue=f"{RUN}-residue-control")
    logging.getLogger("erasure.residue").debug("control line %s", controls["control_log"])

    # then: the subject's canaries are nowhere; each control is found exactly where it was planted
    everything = {**c, **controls}
    db_hits, db_columns = scan_database(everything)
    # the tables that held or hold the subject's data are all read: memories, their history, the tombstones
    # (uuids only), the jobs
    assert {
        "public.memories_memory.text",
        "public.memories_history.old_memory",
        "public.memories_history.new_memory",
        "public.memories_tombstone.ids",
        "public.memories_deletionjob.scope",
    } <= set(db_columns)
    redis_hits, redis_keys = scan_redis(everything, settings.CELERY_BROKER_URL)
    worker_hits = scan_text(everything, worker.log(), f"worker log {worker.log_path}")
    log_hits = scan_text(everything, caplog_text(caplog.records), "caplog of the test process")
    hits = sorted(db_hits + redis_hits + worker_hits + log_hits)
    expected_controls = [
        "control_db: table public.memories_history column new_memory",
        "control_db: table public.memories_memory column search_vector",
        "control_db: table public.memories_memory column text",
        "control_log: caplog of the test process",
        f"control_redis: redis key {RUN}:{RUN}-residue-control",
    ]
    assert hits == sorted(expected_controls), "\n".join(h for h in hits if h not in expected_controls)
    assert redis_keys >= 2  # the control queue and at least this run's kombu binding
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(f"{RUN}:{RUN}-residue-control")
    job_id = str(detail["deletion_job"])
    assert job_id in worker.log()  # the worker log scanned is the one that ran this job
    assert DeletionJob.objects.get(id=job_id).scope is None
    assert not Memory.objects.filter(user_id__in=[c["user_id"], c["user_id_alias"]]).exists()
    # outside the scan, stated: the receipt and the completion notice were sent by the worker (whose locmem outbox
    # dies with it), and their sealed recipient wiped once sent
    notices = SubjectNotice.objects.filter(request_id=detail["id"])
    assert {(n.kind, n.status, n.sealed) for n in notices} == {
        ("receipt", "sent", ""),
        ("completion", "sent", ""),
    }
    assert mail.outbox == []


def _add_through_memory_api(api: Any, c: dict[str, str]) -> int:
    """When the Mem0-compatible API is on this branch, one more memory of the subject goes in through HTTP (so
    request logging and the API's own writes are scanned too). Returns how many memories it added."""
    try:
        resolve("/v3/memories/add/")
    except Resolver404:
        return 0
    response = api.post(
        "/v3/memories/add/",
        {
            "messages": [{"role": "user", "content": f"via http {c['text_1']}"}],
            "user_id": c["user_id"],
            "agent_id": c["agent_id"],
            "metadata": {"city": c["metadata"]},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    return len(response.json()["results"])
