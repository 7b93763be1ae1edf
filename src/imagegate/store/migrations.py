"""Versioned schema migrations, applied in order at start-up by ``SqlStore.connect``.

Each migration is a list of statements written once for both dialects; ``{text_id}`` is the
type of sortable text ids (ULIDs): byte-order ``COLLATE "C"`` on PostgreSQL so ``ORDER BY id``
is time order whatever the database locale, and ``{now}`` is the time of the migration (unix
seconds). Applied versions are recorded in ``schema_migrations``; never edit a released
migration, append a new one.

A primary key cannot be changed in place on SQLite, so migration 2 rebuilds the tables whose
key gains ``workspace_id`` (create ``<table>_v2``, copy, drop, rename): the same SQL on both
dialects. ``traces`` keeps its key (a ULID, unique everywhere) and only gains a column, which
both databases add without rewriting the table — it is by far the largest one.
"""

from __future__ import annotations

TS = "DOUBLE PRECISION"  # unix seconds
WORKSPACE_COLUMN = "TEXT NOT NULL DEFAULT 'default'"


def _rebuild(table: str, columns: str, copied: str) -> list[str]:
    """``table`` again with ``workspace_id`` first (and in its key); old rows → ``default``."""
    new = f"{table}_v2"
    return [
        f"CREATE TABLE {new} (\n                workspace_id {WORKSPACE_COLUMN},\n"
        f"                {columns}\n            )",
        f"INSERT INTO {new} (workspace_id, {copied}) SELECT 'default', {copied} FROM {table}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {new} RENAME TO {table}",
    ]


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
    (
        2,
        "workspaces: workspace_id everywhere, workspaces, api_keys",
        [
            *_rebuild(
                "identities",
                f"""id {{text_id}} NOT NULL,
                display_name TEXT,
                email TEXT,
                logo_url TEXT,
                metadata TEXT,
                tags TEXT,
                created_at {TS} NOT NULL,
                updated_at {TS} NOT NULL,
                last_seen_at {TS} NOT NULL,
                PRIMARY KEY (workspace_id, id)""",
                "id, display_name, email, logo_url, metadata, tags, created_at, updated_at,"
                " last_seen_at",
            ),
            *_rebuild(
                "threads",
                f"""id TEXT NOT NULL,
                first_seen_at {TS} NOT NULL,
                last_seen_at {TS} NOT NULL,
                PRIMARY KEY (workspace_id, id)""",
                "id, first_seen_at, last_seen_at",
            ),
            *_rebuild(
                "thread_tags",
                """thread_id TEXT NOT NULL,
                tag TEXT NOT NULL,
                PRIMARY KEY (workspace_id, thread_id, tag)""",
                "thread_id, tag",
            ),
            *_rebuild(
                "prompts",
                f"""id {{text_id}} NOT NULL,
                name TEXT,
                description TEXT,
                latest_version INTEGER NOT NULL DEFAULT 0,
                created_at {TS} NOT NULL,
                updated_at {TS} NOT NULL,
                PRIMARY KEY (workspace_id, id)""",
                "id, name, description, latest_version, created_at, updated_at",
            ),
            *_rebuild(
                "prompt_versions",
                f"""prompt_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                template TEXT,
                model TEXT,
                parameters TEXT NOT NULL,
                created_at {TS} NOT NULL,
                PRIMARY KEY (workspace_id, prompt_id, version)""",
                "prompt_id, version, template, model, parameters, created_at",
            ),
            f"ALTER TABLE traces ADD COLUMN workspace_id {WORKSPACE_COLUMN}",
            "DROP INDEX traces_identity",
            "DROP INDEX traces_thread",
            "DROP INDEX traces_name",
            "DROP INDEX traces_started",
            "CREATE INDEX traces_ws_id ON traces (workspace_id, id)",
            "CREATE INDEX traces_ws_identity ON traces (workspace_id, identity_id, id)",
            "CREATE INDEX traces_ws_thread ON traces (workspace_id, thread_id, started_at)",
            "CREATE INDEX traces_ws_name ON traces (workspace_id, name, id)",
            "CREATE INDEX traces_ws_started ON traces (workspace_id, started_at)",
            "CREATE INDEX traces_ws_key ON traces (workspace_id, api_key_id, started_at)",
            f"""CREATE TABLE workspaces (
                id {{text_id}} PRIMARY KEY,
                name TEXT,
                key_limits TEXT NOT NULL,
                identity_limits TEXT NOT NULL,
                budget TEXT,
                key_budget TEXT,
                identity_budget TEXT,
                allow_unpriced INTEGER NOT NULL DEFAULT 1,
                created_at {TS} NOT NULL
            )""",
            "INSERT INTO workspaces (id, name, key_limits, identity_limits, allow_unpriced,"
            " created_at) VALUES ('default', NULL, '{}', '{}', 1, {now})",
            f"""CREATE TABLE api_keys (
                id {{text_id}} PRIMARY KEY,
                workspace_id TEXT NOT NULL,
                name TEXT NOT NULL,
                role TEXT NOT NULL,
                prefix TEXT NOT NULL,
                hash TEXT NOT NULL,
                created_at {TS} NOT NULL,
                revoked_at {TS},
                limits TEXT NOT NULL,
                budget TEXT
            )""",
            "CREATE UNIQUE INDEX api_keys_hash ON api_keys (hash)",
            "CREATE INDEX api_keys_workspace ON api_keys (workspace_id, id)",
        ],
    ),
    (
        3,
        "traces keep the prompt and the body's parameters as sent (the console)",
        ["ALTER TABLE traces ADD COLUMN prompt TEXT", "ALTER TABLE traces ADD COLUMN request TEXT"],
    ),
    (
        4,
        "idempotency keys: the kept answer per workspace and key (store/idempotency.py)",
        [
            f"""CREATE TABLE idempotency_keys (
                workspace_id TEXT NOT NULL,
                idem_key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                owner TEXT NOT NULL,
                answer TEXT,
                expires_at {TS} NOT NULL,
                created_at {TS} NOT NULL,
                PRIMARY KEY (workspace_id, idem_key)
            )""",
            "CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at)",
        ],
    ),
    (
        5,
        "async image jobs and their webhook deliveries (store/jobs.py)",
        [
            f"""CREATE TABLE jobs (
                id {{text_id}} PRIMARY KEY,
                workspace_id TEXT NOT NULL,
                operation TEXT NOT NULL,
                status TEXT NOT NULL,
                body TEXT NOT NULL,
                inputs TEXT NOT NULL,
                caller TEXT NOT NULL,
                webhook_url TEXT,
                webhook_secret_id TEXT,
                created_at {TS} NOT NULL,
                updated_at {TS} NOT NULL,
                started_at {TS},
                finished_at {TS},
                lease_owner TEXT,
                lease_until {TS},
                runs INTEGER NOT NULL DEFAULT 0,
                run_log TEXT NOT NULL,
                result TEXT,
                error TEXT,
                http_status INTEGER
            )""",
            "CREATE INDEX jobs_ws_id ON jobs (workspace_id, id)",
            "CREATE INDEX jobs_ws_status ON jobs (workspace_id, status, id)",
            "CREATE INDEX jobs_status ON jobs (status, id)",
            f"""CREATE TABLE webhook_deliveries (
                id {{text_id}} PRIMARY KEY,
                workspace_id TEXT NOT NULL,
                job_id TEXT NOT NULL,
                url TEXT NOT NULL,
                secret_id TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at {TS} NOT NULL,
                next_at {TS} NOT NULL,
                lease_owner TEXT,
                lease_until {TS},
                attempts TEXT NOT NULL
            )""",
            "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_at)",
            "CREATE INDEX webhook_deliveries_job ON webhook_deliveries (workspace_id, job_id)",
        ],
    ),
    (
        6,
        "finished jobs by end time, for the retention purge (jobs/retention.py)",
        ["CREATE INDEX jobs_finished ON jobs (finished_at)"],
    ),
]


def render(statement: str, text_id: str, now: float = 0.0) -> str:
    return statement.replace("{text_id}", text_id).replace("{now}", repr(float(now)))
