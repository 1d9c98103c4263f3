"""Synthetic stores for the benchmark, bulk-loaded with INSERT … SELECT generate_series (no Python per row).

Rows look like the service writes them (memories.services): UUIDv7 ids whose timestamp is the row's created_at
(one millisecond apart, in load order), texts that are short first-person facts like the ones agents store,
metadata a small JSON object, no history row for a memory as added. One memory in UPDATE_EVERY was later edited:
it has one UPDATE history row (old and new text) and has_history set, as memories.services.memory_update leaves it.
"""

import psycopg

UPDATE_EVERY = 20

_TOPICS = "ARRAY['tea','coffee','hiking','jazz','chess','sushi','running','painting','python','gardening']"
_PLACES = "ARRAY['Lisbon','Berlin','Austin','Osaka','Lyon','Porto','Denver','Ghent']"

# A UUIDv7 for millisecond `ms`: a random UUID with its first 48 bits replaced by ms and its version nibble by 7.
_UUID7 = "overlay(overlay(replace(gen_random_uuid()::text, '-', '') PLACING lpad(to_hex({ms}), 12, '0') FROM 1 FOR 12) PLACING '7' FROM 13 FOR 1)::uuid"

_INSERT_MEMORIES = """
INSERT INTO memories_memory (id, text, hash, user_id, agent_id, app_id, run_id, metadata, categories,
                             immutable, expiration_date, legal_hold_id, has_history, created_at, updated_at)
SELECT {uuid7}, t.text, md5(t.text), {user_expr}, 'agent-' || (g %% 5),
       'bench-app', 'run-' || (g %% 97),
       jsonb_build_object('topic', ({topics})[1 + g %% 10], 'source', 'chat', 'turn', g %% 40),
       ARRAY[({topics})[1 + g %% 10]]::varchar[], false, NULL, NULL, g %% {every} = 0,
       to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0)
FROM generate_series(1, %(n)s) AS g,
     LATERAL (SELECT %(base)s::bigint + %(offset)s + g AS ms) AS clock,
     LATERAL (SELECT format('I like %%s and I live near %%s; my reminder number is %%s',
                            ({topics})[1 + g %% 10], ({places})[1 + g %% 8], g) AS text) AS t
"""

_COPY_USER = """
INSERT INTO memories_memory (id, text, hash, user_id, agent_id, app_id, run_id, metadata, categories,
                             immutable, expiration_date, legal_hold_id, has_history, created_at, updated_at)
SELECT {uuid7}, text, hash, %(dst)s, agent_id, app_id, run_id, metadata, categories,
       immutable, expiration_date, legal_hold_id, has_history, to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0)
FROM (SELECT m.*, %(base)s::bigint + %(offset)s + row_number() OVER (ORDER BY id) AS ms
      FROM memories_memory m WHERE user_id = %(src)s) AS src
"""

_UPDATE_HISTORY = """
INSERT INTO memories_history (id, memory_id, event, old_memory, new_memory, categories, created_at)
SELECT gen_random_uuid(), id, 'UPDATE', replace(text, 'I like', 'I used to like'), text, categories,
       created_at + interval '1 second'
FROM memories_memory m
WHERE has_history AND NOT EXISTS (SELECT 1 FROM memories_history h WHERE h.memory_id = m.id)
"""


def load_store(dsn: str, *, groups: list[tuple[str, int, int]], copies: dict[str, str] | None = None) -> int:
    """groups: (user-id prefix, memories, memories per user). A group with per_user == memories is one user
    named exactly by the prefix. copies: {new user: source user} loads an identical copy of a user's rows (new
    ids; the same texts, entities, metadata and history). Into a store that already holds memories, the new ones
    are written after them (later ids) and only they get history rows. Returns the store's size."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        (base,) = conn.execute(  # type: ignore[misc]
            "SELECT (extract(epoch FROM greatest(now() - interval '30 days',"
            " (SELECT max(created_at) + interval '1 millisecond' FROM memories_memory))) * 1000)::bigint"
        ).fetchone()
        offset = 0
        for prefix, n, per_user in groups:
            user_expr = "%(prefix)s" if per_user >= n else "%(prefix)s || '-' || ((g - 1) / %(per_user)s)"
            sql = _INSERT_MEMORIES.format(
                topics=_TOPICS,
                places=_PLACES,
                user_expr=user_expr,
                every=UPDATE_EVERY,
                uuid7=_UUID7.format(ms="ms"),
            )
            conn.execute(
                sql, {"prefix": prefix, "per_user": per_user, "n": n, "base": base, "offset": offset}
            )
            offset += n
        for dst, src in (copies or {}).items():
            cur = conn.execute(_COPY_USER.format(uuid7=_UUID7.format(ms="ms")),
                               {"dst": dst, "src": src, "base": base, "offset": offset})  # fmt: skip
            offset += cur.rowcount
        conn.execute(_UPDATE_HISTORY)
        conn.execute("VACUUM ANALYZE memories_memory")
        conn.execute("VACUUM ANALYZE memories_history")
        (count,) = conn.execute("SELECT count(*) FROM memories_memory").fetchone()  # type: ignore[misc]
    return int(count)
