"""Publishing: the audited marts copied into ``published.duckdb`` atomically, archived
publications to roll back to, and the read-only access every reader goes through."""
