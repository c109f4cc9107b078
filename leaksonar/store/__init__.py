"""The index of findings (`db.Store`)."""

DB_ENV = "LEAKSONAR_DB"
"""The index when no --db is given: SQLite path or database URL (here: the CLI reads it at start-up)."""
