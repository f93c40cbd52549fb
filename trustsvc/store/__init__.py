"""Persistence: SQLite by default, PostgreSQL when several daemons share state."""

from trustsvc.store.database import Database, Transaction, open_database

__all__ = ["Database", "Transaction", "open_database"]
