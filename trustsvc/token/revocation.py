"""Token revocation in the shared store: by jti, and by subject (every token issued before T).

Kept in the ``token`` component of :class:`trustsvc.store.database.Database`, so every daemon
sharing the PostgreSQL database sees a revocation at once. A check is one indexed query.
The revoking methods take ``tx=``, a transaction already open on the same database (the daemon's
audited change, so a revocation and its audit record commit together); without it they open their own.
"""

from __future__ import annotations

import time
from typing import Any

from trustsvc.store.database import Database, Transaction

COMPONENT = "token"
TABLES = ("token_revoked_jti", "token_revoked_subject")
PURGE_KEEP_S = 86_400  # a day past expiry: far beyond any verifier's leeway (60 s by default)
MIGRATIONS = [
    "CREATE TABLE token_revoked_jti ("
    " iss TEXT NOT NULL, jti TEXT NOT NULL, expires_at BIGINT, revoked_at BIGINT NOT NULL,"
    " reason TEXT, PRIMARY KEY (iss, jti));"
    "CREATE TABLE token_revoked_subject ("
    " iss TEXT NOT NULL, sub TEXT NOT NULL, issued_before BIGINT NOT NULL, revoked_at BIGINT NOT NULL,"
    " reason TEXT, PRIMARY KEY (iss, sub))",
]


class RevocationStore:
    """Revocations of one deployment; thread-safe through the Database's per-thread connections."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate(COMPONENT, MIGRATIONS)

    def revoke_jti(self, iss: str, jti: str, *, expires_at: int | None = None, reason: str = "",
                   tx: Transaction | None = None) -> None:
        """Revoke one token (idempotent); in ``tx`` when given."""
        now = int(time.time())
        with self.db.within(tx) as tx:
            found = tx.execute("SELECT 1 FROM token_revoked_jti WHERE iss = ? AND jti = ?", (iss, jti)).fetchone()
            if found is None:
                tx.execute("INSERT INTO token_revoked_jti (iss, jti, expires_at, revoked_at, reason)"
                           " VALUES (?, ?, ?, ?, ?)", (iss, jti, expires_at, now, reason))

    def revoke_subject(self, iss: str, sub: str, before: int | None = None, *, reason: str = "",
                       tx: Transaction | None = None) -> int:
        """Revoke every token of ``sub`` issued before ``before`` (default now); returns the cut-off.
        In ``tx`` when given."""
        now = int(time.time())
        cut = now if before is None else int(before)
        with self.db.within(tx) as tx:
            row = tx.execute("SELECT issued_before FROM token_revoked_subject WHERE iss = ? AND sub = ?",
                             (iss, sub)).fetchone()
            if row is None:
                tx.execute("INSERT INTO token_revoked_subject (iss, sub, issued_before, revoked_at, reason)"
                           " VALUES (?, ?, ?, ?, ?)", (iss, sub, cut, now, reason))
            elif int(row[0]) < cut:  # a cut-off only moves forward
                tx.execute("UPDATE token_revoked_subject SET issued_before = ?, revoked_at = ?, reason = ?"
                           " WHERE iss = ? AND sub = ?", (cut, now, reason, iss, sub))
            else:
                cut = int(row[0])
        return cut

    def is_revoked(self, iss: str, jti: Any, sub: Any, iat: Any) -> bool:
        """True if the jti is revoked or the subject was revoked after this token was issued (a read, no write lock)."""
        with self.db.read() as tx:
            row = tx.execute(
                "SELECT (SELECT 1 FROM token_revoked_jti WHERE iss = ? AND jti = ?),"
                " (SELECT issued_before FROM token_revoked_subject WHERE iss = ? AND sub = ?)",
                (iss, str(jti) if jti is not None else "", iss, str(sub) if sub is not None else "")).fetchone()
        if row is None:
            return False
        if row[0] is not None:
            return True
        if row[1] is not None:
            issued = iat if isinstance(iat, (int, float)) and not isinstance(iat, bool) else None
            return issued is None or issued < int(row[1])
        return False

    def purge_expired(self, now: int | None = None, *, keep_s: int = PURGE_KEEP_S) -> int:
        """Drop jti revocations of tokens that expired more than ``keep_s`` seconds ago; returns how many.

        The margin outlasts any verifier's leeway: a verifier with a leeway of L accepts a token until
        exp + L, so dropping its revocation at exp would let a revoked token through for L seconds."""
        if keep_s < 0:
            raise ValueError("keep_s must not be negative")
        cut = (int(time.time()) if now is None else now) - keep_s
        with self.db.transaction() as tx:
            return tx.execute("DELETE FROM token_revoked_jti WHERE expires_at IS NOT NULL AND expires_at < ?",
                              (cut,)).rowcount
