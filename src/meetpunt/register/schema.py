"""Tables of the connection register (SQLAlchemy Core).

History is kept as validity intervals ``valid_from <= D < valid_to`` (``valid_to``
NULL = still true), one row per version, so "what was true on D" is one indexed
lookup (REG-6). Integer surrogate keys; EANs are attributes (design rule 5).
The Alembic migrations in ``migrations/versions`` create exactly these tables; a
test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

connection = Table(
    "connection",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ean", String(18), nullable=False),
    Column("commodity", String(12), nullable=False),
    UniqueConstraint("ean", "commodity", name="uq_connection_ean_commodity"),
)

connection_version = Table(
    "connection_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=True),
    Column("capacity", String(16), nullable=False),
    Column("status", String(3), nullable=False),
    Column("admin_switch", String(3), nullable=False),
    Column("meter_type", String(16), nullable=False),
    Column("remote_reading", String(24), nullable=False),
    Column("postcode", String(6), nullable=False),
    Column("house_number", Integer, nullable=False),
    Column("house_number_suffix", String(16), nullable=False),
    Column("street", String(120), nullable=False),
    Column("city", String(80), nullable=False),
    Column("municipality", String(80), nullable=False),
    Column("woz_object_id", String(32), nullable=False),
    Column("substation", String(40), nullable=False),
    Column("feeder", String(40), nullable=False),
    Column("phase", String(2), nullable=True),
    Column("customer_type", String(20), nullable=False),
    Column("active_customer", Boolean, nullable=False),
    Column("solar_kwp", Numeric(12, 3), nullable=True),
    Column("solar_registered_on", Date, nullable=True),
    UniqueConstraint("connection_id", "valid_from", name="uq_connection_version_from"),
)

allocation_point = Table(
    "allocation_point",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ean", String(18), nullable=False),
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("capacity", String(16), nullable=True),
    Column("purpose", String(200), nullable=False),
    Column("requested_on", Date, nullable=True),
    UniqueConstraint("ean", "connection_id", name="uq_allocation_point_ean_connection"),
)

allocation_point_status = Table(
    "allocation_point_status",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("allocation_point_id", Integer, ForeignKey("allocation_point.id"), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=True),
    Column("status", String(16), nullable=False),
    UniqueConstraint("allocation_point_id", "valid_from", name="uq_ap_status_from"),
)

supply_contract = Table(
    "supply_contract",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("allocation_point_id", Integer, ForeignKey("allocation_point.id"), nullable=False),
    Column("supplier", String(13), nullable=False),
    Column("contract_holder", String(200), nullable=False),
    Column("contract_type", String(10), nullable=False),
    Column("tariff", String(8), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=True),
)

ean_sequence = Table(
    "ean_sequence",
    metadata,
    Column("prefix", String(16), primary_key=True),
    Column("next_serial", Integer, nullable=False),
)

import_quarantine = Table(
    "import_quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(500), nullable=False),
    Column("line", Integer, nullable=False),
    Column("record", Text, nullable=False),
    Column("rule", String(60), nullable=False),
    Column("message", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# --- the privacy gate (PRV-1..7) ---------------------------------------------------------

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("event", String(16), nullable=False),
    Column("party", String(64), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("connections", Text, nullable=False),
    Column("kinds", Text, nullable=False),
    Column("period_start", DateTime(timezone=True), nullable=True),
    Column("period_end", DateTime(timezone=True), nullable=True),
    Column("rules", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
"""PRV-7: every decision and read, append-only; ``hash`` = SHA-256 over the entry and
``prev_hash``, so an edited, deleted or reordered entry breaks the chain."""

privacy_grant = Table(
    "privacy_grant",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("audit_seq", Integer, nullable=False),
    Column("party", String(64), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("kinds", Text, nullable=False),
    Column("period_start", DateTime(timezone=True), nullable=False),
    Column("period_end", DateTime(timezone=True), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Index("ix_privacy_grant_connection_purpose", "connection_id", "purpose", "period_start"),
)
"""PRV-1/PRV-2: past grants per connection, so frequency and pause rules hold across
requests and restarts."""

consent = Table(
    "consent",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("party", String(64), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("given_by", String(200), nullable=False),
    Column("kinds", Text, nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True), nullable=False),
    Column("state", String(12), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Index("ix_consent_connection_party_purpose", "connection_id", "party", "purpose"),
)
"""PRV-4: a customer's consent for one party, purpose, connection and data kinds."""

disclosure_release = Table(
    "disclosure_release",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("purpose", String(40), nullable=False),
    Column("party", String(64), nullable=False),
    Column("area_level", String(16), nullable=False),
    Column("area", String(80), nullable=False),
    Column("period_start", DateTime(timezone=True), nullable=False),
    Column("period_end", DateTime(timezone=True), nullable=False),
    Column("connections", Text, nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=False),
    Column("epsilon", Float, nullable=False, server_default="0"),
    Index("ix_disclosure_release_area", "area_level", "area", "period_start"),
    Index("ix_disclosure_release_period", "period_start", "period_end"),
)
"""PRV-6: the contributors (connection ids, a sorted JSON list) of every released
aggregate cell with its period, against differencing by connection and overlapping
period; ``epsilon`` the privacy budget the cell spent (0: exact release). The area
columns are for the audit only: the checks never compare labels."""

disclosure_budget = Table(
    "disclosure_budget",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connection_id", Integer, nullable=False),
    Column("year", Integer, nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("epsilon", Float, nullable=False),
    Column("spent_at", DateTime(timezone=True), nullable=False),
    Index("ix_disclosure_budget_connection", "connection_id", "year"),
)
"""PRV-6.budget: the differential-privacy budget each connection spent, per local year."""

privacy_copy = Table(
    "privacy_copy",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("audit_seq", Integer, nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("path", String(1000), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
)
"""PRV-5: meter data copied out under a grant, with its purpose and expiry."""

# --- parties of the HTTP API (issue 17) ---------------------------------------------------

api_party = Table(
    "api_party",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("role", String(16), nullable=False),
    Column("code", String(13), nullable=True),
    Column("holder", String(200), nullable=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("name", String(200), nullable=True),
)
"""Issue 17: a party that calls the HTTP API. ``code`` is a supplier's EAN-13 market
code, ``holder`` a customer's contract-holder name (the gate's own-data rule compares
it, PRV-1.own_data); ``key_hash`` the SHA-256 of its API key, never the key; ``name``
an app's display name (the consent page, "who read my meter")."""

api_party_connection = Table(
    "api_party_connection",
    metadata,
    Column("party_id", Integer, ForeignKey("api_party.id"), primary_key=True),
    Column("connection_id", Integer, ForeignKey("connection.id"), primary_key=True),
)
"""Issue 17: the connections a customer party is bound to (it reads only these)."""

api_redirect_uri = Table(
    "api_redirect_uri",
    metadata,
    Column("party_id", Integer, ForeignKey("api_party.id"), primary_key=True),
    Column("uri", String(500), primary_key=True),
)
"""Issue 17, PRV-4: an app's registered OAuth redirect URIs, matched exactly."""

oauth_code = Table(
    "oauth_code",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("client_id", Integer, ForeignKey("api_party.id"), nullable=False),
    Column("customer_id", Integer, ForeignKey("api_party.id"), nullable=False),
    Column("consents", Text, nullable=False),
    Column("redirect_uri", String(500), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(8), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)
"""Issue 17, PRV-4: an OAuth authorization code, stored as its SHA-256, bound to the
app, the redirect URI and the PKCE challenge; ``consents`` the JSON list of the consent
ids the customer's approval created. One use (``used_at``), short-lived."""

oauth_token = Table(
    "oauth_token",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("access_hash", String(64), nullable=False, unique=True),
    Column("refresh_hash", String(64), nullable=True, unique=True),
    Column("client_id", Integer, ForeignKey("api_party.id"), nullable=False),
    Column("customer_id", Integer, ForeignKey("api_party.id"), nullable=False),
    Column("code_id", Integer, ForeignKey("oauth_code.id"), nullable=False),
    Column("consents", Text, nullable=False),
    Column("scope", String(200), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)
"""Issue 17, PRV-4: an OAuth access token and its refresh token, each stored only as
its SHA-256; ``code_id`` the code it came from (a replayed code revokes them)."""

api_activation = Table(
    "api_activation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("party_id", Integer, ForeignKey("api_party.id"), nullable=False),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)
"""Issue 17: a customer account's one-time activation code (the letter's code), stored
only as its SHA-256; used once (``used_at``), valid until ``expires_at``."""

usecase_run = Table(
    "usecase_run",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("usecase", String(8), nullable=False),
    Column("party_id", Integer, ForeignKey("api_party.id"), nullable=False),
    Column("request", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("result", Text, nullable=False),
)
"""Issue 17: an operator's use-case run over the API (UC4, UC9): what was asked
(``request``, JSON) and the use case's result document (JSON), fetched later by id."""

schedule_task = Table(
    "schedule_task",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("purpose", String(8), nullable=False),
    Column("ean", String(18), nullable=False),
    Column("commodity", String(12), nullable=False),
    Column("grp", String(24), nullable=False),
    Column("every_days", Integer, nullable=False),
    Column("started_on", Date, nullable=False),
    Column("next_due", DateTime(timezone=True), nullable=False),
    Column("stopped_on", Date, nullable=True),
    Column("stop_reason", String(64), nullable=True),
    Column("last_check_at", DateTime(timezone=True), nullable=True),
    Column("last_import_wh", BigInteger, nullable=True),
    UniqueConstraint("purpose", "ean", "commodity", "started_on"),
)
"""Issue 20, UC15: one watch of a connection (``grp`` contractless, out_of_service_on,
out_of_service_off) checked every ``every_days`` from ``started_on`` until it stops
(a contract started, back in service, removed); survives restarts."""

schedule_run = Table(
    "schedule_run",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, ForeignKey("schedule_task.id"), nullable=False),
    Column("due", DateTime(timezone=True), nullable=False),
    Column("outcome", String(24), nullable=False),
    Column("import_wh", BigInteger, nullable=True),
    Column("consumed_wh", BigInteger, nullable=True),
    Column("audit_seq", Integer, nullable=True),
    UniqueConstraint("task_id", "due"),
)
"""Issue 20, UC15: what one due check of a watch found (``consuming``, ``no_consumption``,
``baseline``, ``reachable``, ``unreachable``, ``no_reading``, ``stopped``); one row per
watch and due moment, so running the schedule twice reads nothing twice."""
privacy_flag = Table(
    "privacy_flag",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("usecase", String(8), nullable=False),
    Column("step", String(40), nullable=False),
    Column("opens", String(8), nullable=False),
    Column("party", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("valid_until", DateTime(timezone=True), nullable=False),
    Column("audit_seq", Integer, nullable=False),
    Column("summary", Text, nullable=False),
)
"""Population "flagged" (UC3, UC12): a stored finding of one step (UC2's ranking, UC12's
cable measurement) that opens a follow-up purpose for the connections it names, until
``valid_until``; a follow-up request cites its id and the gate checks it."""

privacy_flag_member = Table(
    "privacy_flag_member",
    metadata,
    Column("flag_id", Integer, ForeignKey("privacy_flag.id"), primary_key=True),
    Column("connection_id", Integer, ForeignKey("connection.id"), primary_key=True),
)
"""The connections a ``privacy_flag`` names (register ids, resolved when it was stored)."""
gis_correction = Table(
    "gis_correction",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("source", String(16), nullable=False),
    Column("old_feeder", String(40), nullable=False),
    Column("old_phase", String(2), nullable=True),
    Column("new_feeder", String(40), nullable=False),
    Column("new_phase", String(2), nullable=True),
    Column("confirmed_by", String(120), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)
"""Issue 19: a GIS correction a person confirmed and applied as a new connection version
from ``valid_from``, with its source (``UC7``: found from the voltages) kept in the
register's history next to the version it made."""
