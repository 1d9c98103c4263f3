"""The SQL functions and triggers as deployed are exactly the files beside the code that calls them
(memories/engine/sql/, erasure/sql/): a migration that changes one must change its file too, and the reverse."""

from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

# each file: the objects it defines, in its order
FILES = {
    "memories/engine/sql/memories_delete_batch.sql": [("function", "memories_delete_batch")],
    "memories/engine/sql/memories_delete_batch_record.sql": [("function", "memories_delete_batch_record")],
    "memories/engine/sql/memories_history_flag.sql": [
        ("function", "memories_history_flag"),
        ("trigger", "memories_history_flag"),
    ],
    "erasure/sql/erasure_audit_append.sql": [("function", "erasure_audit_append")],
}


def _file_definitions(path: str) -> str:
    """The file without its comment lines (`--` at the start of a line), trailing blanks removed."""
    text = (Path(settings.BASE_DIR) / path).read_text()
    return "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip()


def _deployed(kind: str, name: str) -> str:
    with connection.cursor() as cur:
        if kind == "function":
            cur.execute("SELECT rtrim(pg_get_functiondef(%s::regproc), E' \\n') || ';'", [name])
        else:
            cur.execute("SELECT pg_get_triggerdef(oid) || ';' FROM pg_trigger WHERE tgname = %s", [name])
        (definition,) = cur.fetchone()
    return str(definition)


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(FILES))
def test_the_database_holds_exactly_the_definitions_of_the_sql_file(path):
    deployed = "\n\n".join(_deployed(kind, name) for kind, name in FILES[path])
    assert deployed == _file_definitions(path)


@pytest.mark.django_db
def test_every_function_and_trigger_of_the_project_has_its_file():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND p.proname LIKE ANY(ARRAY['memories\\_%', 'erasure\\_audit\\_%'])"
        )
        functions = {name for (name,) in cur.fetchall()}
        cur.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'memories\\_%'")
        triggers = {name for (name,) in cur.fetchall()}
    filed = {(kind, name) for objects in FILES.values() for kind, name in objects}
    assert {("function", name) for name in functions} | {("trigger", name) for name in triggers} == filed
