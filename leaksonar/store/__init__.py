"""The index of findings: `db.Store`, whose parts (scans, findings, hosts, services, events, deliveries,
keys, reports) each own their tables; every read returns the typed rows of `rows`."""

DB_ENV = "LEAKSONAR_DB"
"""The index when no --db is given: SQLite path or database URL (here: the CLI reads it at start-up)."""


class StoreError(Exception):
    """The index cannot be opened or read; the message is one line."""
