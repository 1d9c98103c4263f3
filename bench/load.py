"""Synthetic stores for the benchmark, bulk-loaded with INSERT … SELECT generate_series (no Python per row).

Texts are short first-person facts like the ones agents store, metadata a small JSON object, and every memory
gets one ADD history row holding its text, as memories.services.memories_add writes.
"""

import psycopg

_TOPICS = "ARRAY['tea','coffee','hiking','jazz','chess','sushi','running','painting','python','gardening']"
_PLACES = "ARRAY['Lisbon','Berlin','Austin','Osaka','Lyon','Porto','Denver','Ghent']"

_INSERT_MEMORIES = """
INSERT INTO memories_memory (id, text, hash, user_id, agent_id, app_id, run_id, metadata, categories,
                             immutable, expiration_date, legal_hold_id, created_at, updated_at)
SELECT gen_random_uuid(), t.text, md5(t.text), {user_expr}, 'agent-' || (g %% 5),
       'bench-app', 'run-' || (g %% 97),
       jsonb_build_object('topic', ({topics})[1 + g %% 10], 'source', 'chat', 'turn', g %% 40),
       ARRAY[({topics})[1 + g %% 10]]::varchar[], false, NULL, NULL,
       now() - (g %% 1000) * interval '1 minute', now() - (g %% 1000) * interval '1 minute'
FROM generate_series(1, %(n)s) AS g,
     LATERAL (SELECT format('I like %%s and I live near %%s; my reminder number is %%s',
                            ({topics})[1 + g %% 10], ({places})[1 + g %% 8], g) AS text) AS t
"""

_COPY_USER = """
INSERT INTO memories_memory (id, text, hash, user_id, agent_id, app_id, run_id, metadata, categories,
                             immutable, expiration_date, legal_hold_id, created_at, updated_at)
SELECT gen_random_uuid(), text, hash, %(dst)s, agent_id, app_id, run_id, metadata, categories,
       immutable, expiration_date, legal_hold_id, created_at, updated_at
FROM memories_memory WHERE user_id = %(src)s
"""

_ADD_HISTORY = """
INSERT INTO memories_history (id, memory_id, event, old_memory, new_memory, categories, created_at)
SELECT gen_random_uuid(), id, 'ADD', NULL, text, categories, created_at FROM memories_memory
"""


def load_store(dsn: str, *, groups: list[tuple[str, int, int]], copies: dict[str, str] | None = None) -> int:
    """groups: (user-id prefix, memories, memories per user). A group with per_user == memories is one user
    named exactly by the prefix. copies: {new user: source user} loads an identical copy of a user's rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        for prefix, n, per_user in groups:
            user_expr = "%(prefix)s" if per_user >= n else "%(prefix)s || '-' || ((g - 1) / %(per_user)s)"
            sql = _INSERT_MEMORIES.format(topics=_TOPICS, places=_PLACES, user_expr=user_expr)
            conn.execute(sql, {"prefix": prefix, "per_user": per_user, "n": n})
        for dst, src in (copies or {}).items():
            conn.execute(_COPY_USER, {"dst": dst, "src": src})
        conn.execute(_ADD_HISTORY)
        conn.execute("VACUUM ANALYZE memories_memory")
        conn.execute("VACUUM ANALYZE memories_history")
        (count,) = conn.execute("SELECT count(*) FROM memories_memory").fetchone()  # type: ignore[misc]
    return int(count)
