"""Scale-out: Celery tasks over shards of the target space, a Redis broker, a shared (PostgreSQL) store."""
