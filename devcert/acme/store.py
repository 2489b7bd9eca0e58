"""The ACME server's state in CAROOT/acme/state.sqlite3: accounts, orders, authorizations,
challenges and certificates.

SQLite in WAL mode with ``synchronous=FULL``: every change is one transaction (``BEGIN
IMMEDIATE`` ... ``COMMIT``), so a kill at any instant leaves the complete old or the complete
new state, and a second ``devcert acme`` on the same CAROOT waits for the write lock instead of
interleaving with it. A certificate is inserted in the same transaction that makes its order
``valid``: there is never a valid order without its certificate, nor a certificate without
its order. Nonces are not stored: they are single-use and short-lived, and after a restart a
client gets ``badNonce`` with a fresh nonce, which every client retries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from ..errors import AcmeServerError

STATE_DIR = "acme"
DB_FILE = "state.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, thumbprint TEXT NOT NULL UNIQUE, jwk TEXT NOT NULL, status TEXT NOT NULL,
    contact TEXT NOT NULL, tos INTEGER NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, account TEXT NOT NULL REFERENCES accounts(id), status TEXT NOT NULL,
    identifiers TEXT NOT NULL, expires TEXT NOT NULL, error TEXT, cert TEXT, replaces TEXT,
    created TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_account ON orders(account);
CREATE TABLE IF NOT EXISTS authzs (
    id TEXT PRIMARY KEY, account TEXT NOT NULL, order_id TEXT NOT NULL REFERENCES orders(id),
    position INTEGER NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL, wildcard INTEGER NOT NULL,
    status TEXT NOT NULL, expires TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS authzs_order ON authzs(order_id);
CREATE TABLE IF NOT EXISTS challenges (
    id TEXT PRIMARY KEY, authz TEXT NOT NULL REFERENCES authzs(id), position INTEGER NOT NULL,
    type TEXT NOT NULL, token TEXT NOT NULL, status TEXT NOT NULL, validated TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS challenges_authz ON challenges(authz);
CREATE TABLE IF NOT EXISTS certs (
    id TEXT PRIMARY KEY, account TEXT NOT NULL, order_id TEXT NOT NULL, serial TEXT NOT NULL UNIQUE,
    ari_id TEXT NOT NULL UNIQUE, chain TEXT NOT NULL, not_before TEXT NOT NULL, not_after TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0, reason INTEGER, recorded INTEGER NOT NULL DEFAULT 0,
    replaced_by TEXT);
"""


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def stamp(when: dt.datetime) -> str:
    """RFC 3339 in UTC, as ACME objects carry times."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def new_id() -> str:
    """An unguessable object id: URLs of orders and certificates are capabilities in practice."""
    return secrets.token_urlsafe(12)


class Store:
    """One connection, used from the server's event-loop thread only."""

    def __init__(self, folder: Path):
        self.path = folder / DB_FILE
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            # executescript commits on its own; every statement is idempotent (IF NOT EXISTS)
            self.db.executescript(_SCHEMA)
            with self.transaction():
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise AcmeServerError(f"{self.path} was written by a newer devcert (schema {version}); "
                                          f"upgrade devcert to use it")
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as err:
            raise AcmeServerError(f"cannot open the ACME state database {self.path}: {err}") from None
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(f"{self.path}{suffix}").chmod(0o600)

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change: taken with the write lock at once (no upgrade deadlock)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self.db.execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.db.execute(sql, args).fetchall()

    # -- accounts ----------------------------------------------------------------------------

    def account(self, account_id: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM accounts WHERE id = ?", account_id)

    def account_by_thumbprint(self, thumbprint: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM accounts WHERE thumbprint = ?", thumbprint)

    def add_account(self, thumbprint: str, jwk: str, contact: list[str], tos: bool) -> str:
        account_id = new_id()
        with self.transaction() as db:
            db.execute("INSERT INTO accounts VALUES (?, ?, ?, 'valid', ?, ?, ?)",
                       (account_id, thumbprint, jwk, json.dumps(contact), int(tos), stamp(now())))
        return account_id

    def update_account(self, account_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE accounts SET {sets} WHERE id = ?", (*fields.values(), account_id))

    # -- orders, authorizations, challenges --------------------------------------------------

    def add_order(self, account_id: str, identifiers: list[dict[str, str]], expires: dt.datetime,
                  challenge_types: list[list[str]], replaces: str | None) -> str:
        """An order with one pending authorization per identifier, each with its challenges."""
        order_id = new_id()
        with self.transaction() as db:
            db.execute("INSERT INTO orders VALUES (?, ?, 'pending', ?, ?, NULL, NULL, ?, ?)",
                       (order_id, account_id, json.dumps(identifiers), stamp(expires), replaces, stamp(now())))
            for position, (ident, types) in enumerate(zip(identifiers, challenge_types)):
                authz_id, value = new_id(), ident["value"]
                wildcard = value.startswith("*.")
                db.execute("INSERT INTO authzs VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                           (authz_id, account_id, order_id, position, ident["type"],
                            value[2:] if wildcard else value, int(wildcard), stamp(expires)))
                for n, kind in enumerate(types):
                    db.execute("INSERT INTO challenges VALUES (?, ?, ?, ?, ?, 'pending', NULL, NULL)",
                               (new_id(), authz_id, n, kind, secrets.token_urlsafe(32)))
        return order_id

    def order(self, order_id: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM orders WHERE id = ?", order_id)

    def orders_of(self, account_id: str) -> list[sqlite3.Row]:
        return self.all("SELECT * FROM orders WHERE account = ? ORDER BY created", account_id)

    def authzs_of(self, order_id: str) -> list[sqlite3.Row]:
        return self.all("SELECT * FROM authzs WHERE order_id = ? ORDER BY position", order_id)

    def authz(self, authz_id: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM authzs WHERE id = ?", authz_id)

    def challenges_of(self, authz_id: str) -> list[sqlite3.Row]:
        return self.all("SELECT * FROM challenges WHERE authz = ? ORDER BY position", authz_id)

    def challenge(self, challenge_id: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM challenges WHERE id = ?", challenge_id)

    def processing_challenges(self) -> list[sqlite3.Row]:
        """Challenges a killed server was validating: validated again at start-up."""
        return self.all("SELECT * FROM challenges WHERE status = 'processing'")

    def start_challenge(self, challenge_id: str) -> bool:
        """pending -> processing; False when another request started it already."""
        with self.transaction() as db:
            cur = db.execute("UPDATE challenges SET status = 'processing' WHERE id = ? AND status = 'pending'",
                             (challenge_id,))
        return cur.rowcount == 1

    def finish_challenge(self, challenge_id: str, error: dict[str, Any] | None) -> None:
        """The challenge's result, its authorization's and its order's, in one transaction."""
        with self.transaction() as db:
            chall = db.execute("SELECT * FROM challenges WHERE id = ?", (challenge_id,)).fetchone()
            if chall is None or chall["status"] != "processing":
                return
            authz = db.execute("SELECT * FROM authzs WHERE id = ?", (chall["authz"],)).fetchone()
            if error is None:
                db.execute("UPDATE challenges SET status = 'valid', validated = ? WHERE id = ?",
                           (stamp(now()), challenge_id))
                if authz["status"] == "pending":
                    db.execute("UPDATE authzs SET status = 'valid' WHERE id = ?", (authz["id"],))
            else:
                db.execute("UPDATE challenges SET status = 'invalid', error = ? WHERE id = ?",
                           (json.dumps(error), challenge_id))
                if authz["status"] == "pending":
                    db.execute("UPDATE authzs SET status = 'invalid' WHERE id = ?", (authz["id"],))
            self._settle_order(db, authz["order_id"], error)

    def deactivate_authz(self, authz_id: str) -> None:
        with self.transaction() as db:
            authz = db.execute("SELECT * FROM authzs WHERE id = ?", (authz_id,)).fetchone()
            db.execute("UPDATE authzs SET status = 'deactivated' WHERE id = ?", (authz_id,))
            self._settle_order(db, authz["order_id"], None)

    @staticmethod
    def _settle_order(db: sqlite3.Connection, order_id: str, error: dict[str, Any] | None) -> None:
        """pending -> ready when every authorization is valid, -> invalid when one is not."""
        order = db.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()
        if order is None or order["status"] != "pending":
            return
        statuses = {r["status"] for r in db.execute("SELECT status FROM authzs WHERE order_id = ?", (order_id,))}
        if statuses == {"valid"}:
            db.execute("UPDATE orders SET status = 'ready' WHERE id = ?", (order_id,))
        elif statuses - {"valid", "pending"}:
            db.execute("UPDATE orders SET status = 'invalid', error = ? WHERE id = ?",
                       (json.dumps(error) if error else None, order_id))

    def expire(self, when: dt.datetime) -> None:
        """Pending and ready orders (and pending authorizations) past their ``expires`` become invalid."""
        t = stamp(when)
        with self.transaction() as db:
            db.execute("UPDATE orders SET status = 'invalid' WHERE status IN ('pending', 'ready') AND expires < ?", (t,))
            db.execute("UPDATE authzs SET status = 'expired' WHERE status = 'pending' AND expires < ?", (t,))

    def fail_order(self, order_id: str, error: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("UPDATE orders SET status = 'invalid', error = ? WHERE id = ? AND status = 'ready'",
                       (json.dumps(error), order_id))

    # -- certificates ------------------------------------------------------------------------

    def issue(self, order_id: str, sign: Any) -> str | None:
        """ready -> valid with the certificate ``sign()`` returns, in one transaction.

        ``sign()`` runs inside the transaction, so no second finalize can sign the same order
        and no kill leaves a ``processing`` order behind. None when the order was not ready.
        """
        with self.transaction() as db:
            order = db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
            if order is None or order["status"] != "ready":
                return None
            cert = sign()
            cert_id = new_id()
            db.execute("INSERT INTO certs (id, account, order_id, serial, ari_id, chain, not_before, not_after) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (cert_id, order["account"], order_id, cert["serial"], cert["ari_id"], cert["chain"],
                        cert["not_before"], cert["not_after"]))
            db.execute("UPDATE orders SET status = 'valid', cert = ? WHERE id = ?", (cert_id, order_id))
            if order["replaces"]:
                db.execute("UPDATE certs SET replaced_by = ? WHERE ari_id = ? AND replaced_by IS NULL",
                           (order_id, order["replaces"]))
        return cert_id

    def cert(self, cert_id: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM certs WHERE id = ?", cert_id)

    def cert_by_serial(self, serial: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM certs WHERE serial = ?", serial)

    def cert_by_ari_id(self, ari_id: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM certs WHERE ari_id = ?", ari_id)

    def revoke(self, cert_id: str, reason: int) -> bool:
        with self.transaction() as db:
            cur = db.execute("UPDATE certs SET revoked = 1, reason = ? WHERE id = ? AND revoked = 0", (reason, cert_id))
        return cur.rowcount == 1

    def unrecorded(self) -> list[sqlite3.Row]:
        """Certificates not yet in devcert's inventory (a kill between issuing and recording)."""
        return self.all("SELECT * FROM certs WHERE recorded = 0")

    def mark_recorded(self, cert_id: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE certs SET recorded = 1 WHERE id = ?", (cert_id,))
