"""Append-only audit tables: a trigger refuses UPDATE and DELETE on the hash chain and on django-auditlog's rows.

TRUNCATE is not refused (test databases are flushed with it); in production the application's database role should
not own these tables, so it cannot TRUNCATE them or disable the triggers.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION erasure_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

TABLES = ["erasure_auditentry", "auditlog_logentry"]


def _trigger(table: str) -> str:
    return (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION erasure_refuse_change();"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("erasure", "0001_initial"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS erasure_refuse_change() CASCADE;"),
        *[
            migrations.RunSQL(_trigger(t), f"DROP TRIGGER IF EXISTS {t}_append_only ON {t};")
            for t in TABLES
        ],
        # verify_audit_chain's anti-join from auditlog rows to their chain entries.
        migrations.RunSQL(
            "CREATE INDEX erasure_audit_logentry_idx ON erasure_auditentry "
            "(((data->>'logentry_id')::bigint)) WHERE action = 'auditlog';",
            "DROP INDEX IF EXISTS erasure_audit_logentry_idx;",
        ),
    ]
