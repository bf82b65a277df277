"""Persistence: one interface (`base.Transaction`), SQLite and PostgreSQL behind it."""
