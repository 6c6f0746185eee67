"""The parties that call the HTTP API and their keys (issue 17).

A party has a role (``supplier`` with its EAN-13 market code, ``app`` with the OAuth
redirect URIs it registered (PRV-4: matched exactly), ``operator``,
``customer`` bound to the connections they hold) and one API key. The key is
``secrets.token_urlsafe(32)`` (256 random bits), shown once when the party is added and
stored only as its SHA-256: with that much entropy a plain hash cannot be guessed
back, and a lookup by hash is one indexed query. A revoked party keeps its row (the
audit log names it) but its key no longer opens anything.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import Row, insert, select, update

from meetpunt.domain.calendar import to_local
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.contract import check_supplier_gln
from meetpunt.domain.findings import Finding
from meetpunt.errors import RegisterError
from meetpunt.register import schema as t
from meetpunt.register.base import SessionBase

if TYPE_CHECKING:
    from meetpunt.register.read import ContractRow


class ApiRole(StrEnum):
    """What a party of the API is (issue 17)."""

    SUPPLIER = "supplier"
    APP = "app"
    OPERATOR = "operator"
    CUSTOMER = "customer"


KEY_PREFIX = "mp_"
"""API keys start with this, so a leaked one is recognisable in a log or a repository."""


def new_key() -> str:
    """A fresh API key: 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """The stored form of an API key: its SHA-256, hex (the key itself is never kept)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiParty:
    """One party of the API as stored: ``code`` for a supplier, ``holder`` and the bound
    connections' EANs for a customer."""

    id: int
    role: ApiRole
    code: str | None
    holder: str | None
    eans: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    redirect_uris: tuple[str, ...] = ()
    name: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def display_name(self) -> str:
        """What a customer sees for this party: an app's name, else ``app N``."""
        return self.name or f"{self.role.value} {self.id}"


def _refuse(rule: str, message: str) -> RegisterError:
    return RegisterError(message, [Finding(rule, message)])


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
"""Hosts where an app's redirect URI may be plain http (RFC 8252 7.3: a native app
listening on the loopback interface)."""


def check_redirect_uri(uri: str) -> Finding | None:
    """Why ``uri`` cannot be an app's redirect URI, or None: it must be absolute, https
    (http only on the loopback), without a fragment (RFC 6749 3.1.2) and without a
    wildcard, since it is matched exactly (PRV-4)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        parts = urlsplit("")
    why = None
    if not parts.scheme or not parts.hostname:
        why = "is not an absolute URI"
    elif parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
        why = "must be https (http only on 127.0.0.1, ::1 or localhost)"
    elif parts.fragment or "#" in uri:
        why = "may not have a fragment"
    elif "*" in uri:
        why = "may not have a wildcard: redirect URIs are matched exactly"
    elif len(uri) > 500 or any(c.isspace() for c in uri):
        why = "is longer than 500 characters or has white space"
    return None if why is None else Finding("API-party.redirect_uri", f"{uri!r} {why}")


NAME_MAX = 200
"""Longest display name of an app."""


def check_name(role: ApiRole, name: str | None) -> Finding | None:
    """Why ``name`` cannot be the party's display name, or None: only an app has one
    (the others are named by their market code or contract), of 1 to :data:`NAME_MAX`
    printable characters."""
    if name is None:
        return None
    if role is not ApiRole.APP:
        return Finding("API-party.name", f"only an app has a display name, not a {role.value}")
    if not name.strip() or len(name) > NAME_MAX or not name.isprintable():
        return Finding(
            "API-party.name",
            f"an app's name is 1 to {NAME_MAX} printable characters, not {name!r}",
        )
    return None


def check_party(
    role: ApiRole,
    code: str | None,
    eans: Sequence[str],
    redirect_uris: Sequence[str] = (),
    name: str | None = None,
) -> list[Finding]:
    """Every broken rule of a new party's role, code, connections, redirect URIs and
    name: a supplier needs its EAN-13 market code (REG-6.supplier) and no connections,
    a customer at least one connection and no code, an app at least one valid redirect
    URI (PRV-4) and may have a display name, the others none of these."""
    found: list[Finding] = []
    bad_name = check_name(role, name)
    if bad_name is not None:
        found.append(bad_name)
    if role is ApiRole.SUPPLIER:
        if code is None:
            found.append(Finding("API-party.code", "a supplier needs its EAN-13 market code"))
        else:
            bad = check_supplier_gln(code)
            if bad is not None:
                found.append(bad)
    elif code is not None:
        found.append(Finding("API-party.code", f"a {role.value} has no market code"))
    if role is ApiRole.CUSTOMER and not eans:
        found.append(Finding("API-party.ean", "a customer is bound to at least one connection"))
    if role is not ApiRole.CUSTOMER and eans:
        found.append(Finding("API-party.ean", f"a {role.value} is not bound to connections"))
    if role is ApiRole.APP:
        if not redirect_uris:
            found.append(
                Finding("API-party.redirect_uri", "an app registers at least one redirect URI")
            )
        found.extend(f for f in map(check_redirect_uri, redirect_uris) if f is not None)
    elif redirect_uris:
        found.append(
            Finding("API-party.redirect_uri", f"a {role.value} has no OAuth redirect URIs")
        )
    return found


class ApiParties(SessionBase):
    """Adding, listing, revoking and finding API parties (issue 17)."""

    def add_api_party(
        self,
        role: ApiRole,
        now: datetime,
        code: str | None = None,
        eans: Sequence[str] = (),
        holder: str | None = None,
        redirect_uris: Sequence[str] = (),
        name: str | None = None,
    ) -> tuple[ApiParty, str]:
        """Add a party; returns it with its API key (shown this once, stored as a hash).

        A customer is bound to electricity connections the register knows; ``holder``
        (default: the contract holder on ``now``'s local day of the first connection) must
        hold a contract on each of them at some time, since the gate grants a customer
        only the days they hold it (PRV-1.own_data). An app (an OAuth client: client id =
        party id, client secret = the key) registers its redirect URIs. Every broken rule
        is refused at once. An app's ``name`` is what customers see on the consent page
        and in "who read my meter"."""
        uris = tuple(dict.fromkeys(redirect_uris))
        name = name.strip() if name is not None else None
        findings = check_party(role, code, eans, uris, name)
        ids = {}
        for ean in dict.fromkeys(eans):
            found = self._connection_ids(ean, Commodity.ELECTRICITY)
            if found:
                ids[ean] = found[0][0]
            else:
                findings.append(
                    Finding("API-party.ean", f"no electricity connection with EAN {ean}")
                )
        if role is ApiRole.CUSTOMER and ids and not findings:
            holder = self._customer_holder(ids, holder, to_local(now).date())
            if holder is None:
                findings.append(
                    Finding(
                        "API-party.holder",
                        "name the customer (--holder): the first connection has no contract "
                        "holder today",
                    )
                )
        if findings:
            raise RegisterError("; ".join(f.message for f in findings), findings)
        key = new_key()
        holder = holder if role is ApiRole.CUSTOMER else None
        row = {
            "role": role.value,
            "code": code,
            "holder": holder,
            "key_hash": key_hash(key),
            "name": name,
        }
        inserted = self._conn.execute(insert(t.api_party).values({**row, "created_at": now}))
        pid = inserted.inserted_primary_key[0]  # type: ignore[index]
        if ids:
            self._conn.execute(
                insert(t.api_party_connection),
                [{"party_id": pid, "connection_id": cid} for cid in ids.values()],
            )
        if uris:
            self._conn.execute(
                insert(t.api_redirect_uri), [{"party_id": pid, "uri": u} for u in uris]
            )
        party = ApiParty(pid, role, code, holder, tuple(ids), now, None, uris, name)
        return party, key

    def _customer_holder(self, ids: dict[str, int], holder: str | None, today: date) -> str | None:
        """The customer's holder name, checked against each connection's contracts."""
        contracts = _primary_contracts()(self._conn, list(ids.values()))
        if holder is None:
            first = contracts.get(next(iter(ids.values())), [])
            current = [
                c.holder for c in first if c.start <= today and (c.end is None or c.end > today)
            ]
            if not current:
                return None
            holder = current[0]
        for ean, cid in ids.items():
            if not any(c.holder == holder for c in contracts.get(cid, [])):
                raise _refuse(
                    "API-party.holder", f"{holder!r} never held a contract on connection {ean}"
                )
        return holder

    def api_parties(self) -> list[ApiParty]:
        """Every party, oldest first, with its bound EANs."""
        bound: dict[int, list[str]] = {}
        query = (
            select(t.api_party_connection.c.party_id, t.connection.c.ean)
            .join(t.connection, t.connection.c.id == t.api_party_connection.c.connection_id)
            .order_by(t.api_party_connection.c.party_id, t.connection.c.ean)
        )
        for pid, ean in self._conn.execute(query):
            bound.setdefault(pid, []).append(ean)
        uris: dict[int, list[str]] = {}
        r = t.api_redirect_uri
        for pid, uri in self._conn.execute(select(r.c.party_id, r.c.uri).order_by(r.c.uri)):
            uris.setdefault(pid, []).append(uri)
        rows = self._conn.execute(select(t.api_party).order_by(t.api_party.c.id))
        return [_party(r, bound.get(r.id, []), uris.get(r.id, [])) for r in rows]

    def app_names(self) -> dict[int, str]:
        """The display names of the apps that have one, by party id (one query): for
        "who read my meter" (issue 17)."""
        p = t.api_party
        query = select(p.c.id, p.c.name).where(p.c.role == ApiRole.APP.value, p.c.name.is_not(None))
        return {int(pid): str(name) for pid, name in self._conn.execute(query)}

    def revoke_api_party(self, party_id: int, now: datetime) -> ApiParty:
        """Revoke a party's key from ``now`` on; refused for an unknown party. Revoking
        twice keeps the first time."""
        p = t.api_party
        self._conn.execute(
            update(p).where(p.c.id == party_id, p.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        found = [x for x in self.api_parties() if x.id == party_id]
        if not found:
            raise _refuse("API-party.unknown", f"no API party with id {party_id}")
        return found[0]

    def customer_stretches(self, party: ApiParty) -> dict[str, list[tuple[date, date | None]]]:
        """Per bound EAN, the days the customer held it (``[start, end)``, end None:
        still): what "who read my meter" shows them (PRV-7). Two queries."""
        ids = {
            row.ean: row.id
            for row in self._conn.execute(
                select(t.connection.c.ean, t.connection.c.id)
                .join(
                    t.api_party_connection,
                    t.connection.c.id == t.api_party_connection.c.connection_id,
                )
                .where(t.api_party_connection.c.party_id == party.id)
            )
        }
        contracts = _primary_contracts()(self._conn, list(ids.values()))
        return {
            ean: held_stretches(contracts.get(cid, []), party.holder or "")
            for ean, cid in ids.items()
        }

    def api_party_by_key(self, key: str) -> ApiParty | None:
        """The party whose key this is (also when revoked: the caller says why it is
        refused), or None. One indexed lookup by the key's hash, confirmed with a
        constant-time comparison."""
        digest = key_hash(key)
        row = self._conn.execute(
            select(t.api_party).where(t.api_party.c.key_hash == digest)
        ).first()
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        return self._with_bindings(row)

    def api_party_by_id(self, party_id: int) -> ApiParty | None:
        """The party with this id (revoked too), or None: an OAuth client by its client
        id (PRV-4)."""
        row = self._conn.execute(select(t.api_party).where(t.api_party.c.id == party_id)).first()
        return None if row is None else self._with_bindings(row)

    def _with_bindings(self, row: Row[Any]) -> ApiParty:
        """The party of ``row`` with its bound EANs and redirect URIs (two queries)."""
        eans = self._conn.execute(
            select(t.connection.c.ean)
            .join(
                t.api_party_connection, t.connection.c.id == t.api_party_connection.c.connection_id
            )
            .where(t.api_party_connection.c.party_id == row.id)
            .order_by(t.connection.c.ean)
        ).scalars()
        r = t.api_redirect_uri
        uris = self._conn.execute(
            select(r.c.uri).where(r.c.party_id == row.id).order_by(r.c.uri)
        ).scalars()
        return _party(row, list(eans), list(uris))


def _primary_contracts() -> Any:
    """``register.read.primary_contracts``, imported when called (``read`` imports the
    store, which imports this module)."""
    from meetpunt.register.read import primary_contracts

    return primary_contracts


def _utc(moment: datetime | None) -> datetime | None:
    """A stored time as aware UTC (SQLite returns it naive; it was written as UTC)."""
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _party(row: Row[Any], eans: Sequence[str], uris: Sequence[str] = ()) -> ApiParty:
    created = _utc(row.created_at)
    assert created is not None
    return ApiParty(
        row.id,
        ApiRole(row.role),
        row.code,
        row.holder,
        tuple(eans),
        created,
        _utc(row.revoked_at),
        tuple(uris),
        row.name,
    )


def held_stretches(contracts: Sequence[ContractRow], holder: str) -> list[tuple[date, date | None]]:
    """The days ``holder`` held the connection: their contracts' ``[start, end)``."""
    return [(c.start, c.end) for c in contracts if c.holder == holder]
