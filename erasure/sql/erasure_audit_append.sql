-- The audit chain's one writer (erasure.audit._append); the hash is erasure.audit.chain_hash's formula.
-- As deployed. A migration that changes it carries a frozen copy; tests/memories/test_engine_sql.py checks that
-- the database holds exactly this.
CREATE OR REPLACE FUNCTION public.erasure_audit_append(p_lock bigint, p_created_at timestamp with time zone, p_actor character varying, p_action character varying, p_request uuid, p_reference character varying, p_data jsonb, p_body bytea, OUT o_id bigint, OUT o_prev character varying, OUT o_hash character varying)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
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
$function$;
