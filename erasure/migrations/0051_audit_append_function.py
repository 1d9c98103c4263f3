"""The audit chain's append as one SQL function (erasure.audit._append): it takes the chain's transaction-level
advisory lock, reads the latest entry's hash, computes the new entry's hash and inserts it, in one round trip
instead of three. The hash is the same as before: sha256(prev_hash ‖ canonical body), where the canonical body (JSON
of created_at, actor, action, request, reference, data; erasure.audit.canonical) is computed by the caller and
passed as bytes, so readers recompute it exactly as they did."""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION erasure_audit_append(
    p_lock bigint, p_created_at timestamptz, p_actor varchar, p_action varchar, p_request uuid, p_reference varchar,
    p_data jsonb, p_body bytea, OUT o_id bigint, OUT o_prev varchar, OUT o_hash varchar
) LANGUAGE plpgsql AS $fn$
BEGIN
    -- Appends are serialised by this lock; in READ COMMITTED the SELECT below (a new statement, a new snapshot)
    -- then sees every entry committed before the lock was granted.
    PERFORM pg_advisory_xact_lock(p_lock);
    SELECT a.entry_hash INTO o_prev FROM erasure_auditentry a ORDER BY a.id DESC LIMIT 1;
    o_prev := coalesce(o_prev, repeat('0', 64));
    o_hash := encode(sha256(convert_to(o_prev, 'UTF8') || p_body), 'hex');
    INSERT INTO erasure_auditentry (created_at, actor, action, request_id, reference, data, prev_hash, entry_hash)
        VALUES (p_created_at, p_actor, p_action, p_request, p_reference, p_data, o_prev, o_hash)
        RETURNING id INTO o_id;
END
$fn$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("erasure", "0050_proof_append_only"),
    ]

    operations = [
        migrations.RunSQL(
            FUNCTION,
            "DROP FUNCTION erasure_audit_append(bigint, timestamptz, varchar, varchar, uuid, varchar, jsonb, bytea);",
        ),
    ]
