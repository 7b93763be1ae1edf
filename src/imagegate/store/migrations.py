"""Versioned schema migrations, applied in order at start-up by ``SqlStore.connect``.

Each migration is a list of statements written once for both dialects; ``{text_id}`` is the
type of sortable text ids (ULIDs): byte-order ``COLLATE "C"`` on PostgreSQL so ``ORDER BY id``
is time order whatever the database locale. Applied versions are recorded in
``schema_migrations``; never edit a released migration, append a new one.
"""

from __future__ import annotations

TS = "DOUBLE PRECISION"  # unix seconds

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "identities, threads, prompts, traces",
        [
            f"""CREATE TABLE identities (
                id {{text_id}} PRIMARY KEY,
                display_name TEXT,
                email TEXT,
                logo_url TEXT,
                metadata TEXT,
                tags TEXT,
                created_at {TS} NOT NULL,
                updated_at {TS} NOT NULL,
                last_seen_at {TS} NOT NULL
            )""",
            f"""CREATE TABLE threads (
                id TEXT PRIMARY KEY,
                first_seen_at {TS} NOT NULL,
                last_seen_at {TS} NOT NULL
            )""",
            """CREATE TABLE thread_tags (
                thread_id TEXT NOT NULL,
                tag TEXT NOT NULL,
                PRIMARY KEY (thread_id, tag)
            )""",
            f"""CREATE TABLE prompts (
                id {{text_id}} PRIMARY KEY,
                name TEXT,
                description TEXT,
                latest_version INTEGER NOT NULL DEFAULT 0,
                created_at {TS} NOT NULL,
                updated_at {TS} NOT NULL
            )""",
            f"""CREATE TABLE prompt_versions (
                prompt_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                template TEXT,
                model TEXT,
                parameters TEXT NOT NULL,
                created_at {TS} NOT NULL,
                PRIMARY KEY (prompt_id, version)
            )""",
            f"""CREATE TABLE traces (
                id {{text_id}} PRIMARY KEY,
                name TEXT NOT NULL,
                operation TEXT NOT NULL,
                started_at {TS} NOT NULL,
                duration_ms DOUBLE PRECISION,
                status INTEGER,
                error_code TEXT,
                error_message TEXT,
                api_key_id TEXT,
                identity_id TEXT,
                thread_id TEXT,
                prompt_id TEXT,
                prompt_version INTEGER,
                requested_model TEXT,
                served_model TEXT,
                cache TEXT,
                n INTEGER,
                size TEXT,
                quality TEXT,
                cost_usd DOUBLE PRECISION,
                attempts TEXT NOT NULL,
                skipped TEXT NOT NULL,
                output_blobs TEXT NOT NULL,
                usage TEXT,
                metadata TEXT NOT NULL,
                notes TEXT NOT NULL
            )""",
            "CREATE INDEX traces_identity ON traces (identity_id, id)",
            "CREATE INDEX traces_thread ON traces (thread_id, started_at)",
            "CREATE INDEX traces_name ON traces (name, id)",
            "CREATE INDEX traces_started ON traces (started_at)",
        ],
    ),
]


def render(statement: str, text_id: str) -> str:
    return statement.replace("{text_id}", text_id)
