"""`leaksonar verify`: is a leaked sample internally consistent? The reader (CSV/JSON/JSONL, gzip) and the
consistency checks."""
