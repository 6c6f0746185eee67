"""The change feed (issue 17): gap-free and at-least-once across restarts of the server
and of ingestion, a party never sees another's connection, a correction of an estimate
appears as one, a cursor that is not one is 400, and every read is audited (PRV-1,
PRV-7)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meetpunt import rulebook
from meetpunt.api import create_app
from meetpunt.api.feed import Changed, page_end
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.store import open_store
from meetpunt.register import open_register
from tests.api.conftest import NOW, scenario, source
from tests.api.test_api import records
from tests.api.test_oauth import Flow, flow, tokens  # noqa: F401 - flow is a fixture
from tests.api.test_oauth import records as oauth_records
from tests.meterdata.conftest import quarters, reading
from tests.scenarios.test_scenarios import EANS, MOVE, S1, S2, SINCE
from tests.unit.domain.factories import attributes, contract

AUG_2 = 1_160_000
"""The register on 2 August, one more day of 5 kWh after the July readings (conftest)."""
SWITCH = date(2025, 7, 5)
"""The day ``switched`` goes from S1 to S2 (tests/scenarios/README.md)."""


@dataclass
class Feed:
    """A register and store with parties, and a way to (re)start the API over them."""

    db_url: str
    store: Path
    keys: dict[str, str]

    def server(self) -> TestClient:
        return TestClient(create_app(self.db_url, self.store, clock=lambda: NOW))

    def ingest(self, kind: str, rows: list[dict[str, Any]]) -> None:
        """One batch into the store, by an ingestion process of its own (opened and
        closed here: a restart of ingestion)."""
        register = open_register(self.db_url)
        try:
            with register.session() as s:
                index = ConnectionIndex(s.meter_index(), 230.0)
            store = open_store(self.store)
            try:
                Ingestor(store, index, rulebook.vee_rules(), now=NOW).ingest(source(kind, rows))
            finally:
                store.close()
        finally:
            register.dispose()


@pytest.fixture
def feed(db_url: str, tmp_path: Path) -> Feed:
    store, keys = scenario(db_url, tmp_path)
    return Feed(db_url, store, keys)


@pytest.fixture
def client(feed: Feed) -> Iterator[TestClient]:
    with feed.server() as http:
        yield http


def page(http: TestClient, feed: Feed, who: str, cursor: str = "0", **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {feed.keys[who]}"}
    return http.get("/v1/feed", params={"cursor": cursor, **params}, headers=headers)


def drain(http: TestClient, feed: Feed, who: str, cursor: str = "0", **params: Any) -> Any:
    """Every page from ``cursor`` on: the rows and the last cursor."""
    rows: list[dict[str, Any]] = []
    while True:
        answer = page(http, feed, who, cursor, **params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rows += body["changes"]
        assert int(body["next_cursor"]) >= int(cursor)
        cursor = body["next_cursor"]
        if not body["more"]:
            return rows, cursor


def key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["kind"], row["ean"], row.get("at") or row.get("start"))


def test_a_supplier_gets_only_its_connections_during_its_contracts(
    client: TestClient, feed: Feed
) -> None:
    rows, _ = drain(client, feed, "S1")
    seen = {r["ean"] for r in rows}
    assert seen == {EANS["normal"], EANS["switched"], EANS["moved"]}
    last = {ean: max(r["at"] for r in rows if r["ean"] == ean) for ean in seen}
    # the final reading on the switch and move day is the last S1 gets (PRV-1)
    assert last[EANS["switched"]] == local_midnight_utc(SWITCH).isoformat()
    assert last[EANS["moved"]] == local_midnight_utc(MOVE).isoformat()
    others, _ = drain(client, feed, "S2")
    assert EANS["normal"] not in {r["ean"] for r in others}
    assert {r["ean"] for r in others} == {EANS["neighbour"], EANS["switched"], EANS["moved"]}
    # the arriving supplier starts at the same final reading, never before it
    assert all(r["at"] >= last[r["ean"]] for r in others if r["ean"] in last)
    assert len(rows) == len({key(r) for r in rows})


def test_an_opted_out_connection_is_refused_audited_and_does_not_hold_back_the_rest(
    client: TestClient, feed: Feed
) -> None:
    body = page(client, feed, "S1").json()
    refused = [r for r in body["refused"] if r["ean"] == EANS["opted_out"]]
    assert refused and "PRV-3.opt_out" in refused[0]["rules"]
    assert EANS["opted_out"] not in {r["ean"] for r in body["changes"]}
    assert body["changes"]


def test_every_feed_read_goes_through_the_gate_and_is_audited(
    client: TestClient, feed: Feed
) -> None:
    before = len(records(feed.db_url))
    page(client, feed, "de_vries")
    new = records(feed.db_url)[before:]
    assert {(r.entry.purpose, r.entry.event) for r in new} >= {
        ("customer_own", "decision"),
        ("customer_own", "read"),
    }
    assert all(r.entry.detail["justification"] == "HTTP API /v1/feed" for r in new)
    assert all(r.entry.connections == (EANS["normal"],) for r in new)


def test_nothing_is_lost_across_restarts_of_the_server_and_of_ingestion(feed: Feed) -> None:
    with feed.server() as http:
        first, cursor = drain(http, feed, "S1")
    august = [reading(EANS["normal"], local_midnight_utc(date(2025, 8, 2)), AUG_2)]
    feed.ingest("daily_readings", august)
    neighbours = [reading(EANS["neighbour"], local_midnight_utc(date(2025, 8, 2)), AUG_2)]
    feed.ingest("daily_readings", neighbours)
    with feed.server() as http:
        after, again = drain(http, feed, "S1", cursor)
        assert [(r["ean"], r["import_t1_wh"]) for r in after] == [(EANS["normal"], AUG_2)]
        assert drain(http, feed, "S1", again) == ([], again)
        # at-least-once: the old cursor again gives the same rows again
        assert drain(http, feed, "S1", cursor)[0] == after
    assert not {key(r) for r in after} & {key(r) for r in first}


def test_pages_of_any_size_give_every_row_exactly_once(client: TestClient, feed: Feed) -> None:
    for day in range(2, 6):
        at = local_midnight_utc(date(2025, 8, day))
        feed.ingest("daily_readings", [reading(EANS["normal"], at, AUG_2 + 5_000 * (day - 2))])
    whole, head = drain(client, feed, "S1")
    assert len([r for r in whole if r["at"] > "2025-08-01T22"]) == 4
    for limit in (1, 2, 7, 40):
        paged, cursor = drain(client, feed, "S1", limit=limit)
        assert cursor == head
        assert sorted(map(key, paged)) == sorted(map(key, whole))


def test_a_correction_of_an_estimate_appears_as_a_correction(
    client: TestClient, feed: Feed
) -> None:
    ean = EANS["normal"]
    rows = quarters(ean, datetime(2025, 7, 2, tzinfo=UTC), 96 * 8, wh=80)
    feed.ingest("quarter_hours", rows[:-2] + rows[-1:])
    estimated, cursor = drain(client, feed, "de_vries")
    late = [r for r in estimated if r["kind"] == "quarter_hours" and r["status"] != "measured"]
    assert [r["change"] for r in late] == ["new"]
    feed.ingest("quarter_hours", [rows[-2] | {"import_wh": 77}])
    corrected, _ = drain(client, feed, "de_vries", cursor)
    assert [(r["change"], r["status"], r["import_wh"], r["start"]) for r in corrected] == [
        ("correction", "measured", 77, late[0]["start"])
    ]
    # the other customer and the suppliers never see it (no quarter-hours for suppliers)
    assert drain(client, feed, "bakker", cursor)[0] == []
    assert drain(client, feed, "S1", cursor)[0] == []


@pytest.mark.parametrize("cursor", ["abc", "-1", "1e3", "", " 1", "1.0", "9" * 19])
def test_a_cursor_that_is_not_one_is_400(client: TestClient, feed: Feed, cursor: str) -> None:
    answer = page(client, feed, "S1", cursor)
    assert answer.status_code == 400
    assert answer.json()["error"]["rule"] == "API-feed.cursor"


def test_a_cursor_from_the_future_is_400(client: TestClient, feed: Feed) -> None:
    _, head = drain(client, feed, "S1")
    answer = page(client, feed, "S1", str(int(head) + 1))
    assert answer.status_code == 400
    assert answer.json()["error"]["rule"] == "API-feed.cursor_ahead"


def test_the_feed_is_for_suppliers_and_customers_only(client: TestClient, feed: Feed) -> None:
    for who in ("operator", "app"):
        answer = page(client, feed, who)
        assert answer.status_code == 403
        assert answer.json()["error"]["rule"] == "API-role.feed"
    assert client.get("/v1/feed", params={"cursor": "0"}).status_code == 401


T = datetime(2025, 7, 1)


@given(
    st.lists(st.integers(1, 50), min_size=0, max_size=30),
    st.integers(1, 120),
)
def test_pages_end_on_batch_boundaries_and_always_move_on(sizes: list[int], limit: int) -> None:
    """Following ``page_end`` from 0 visits every batch once, a page holds whole
    batches, and a page is over ``limit`` only when its first batch alone is."""
    found = [Changed(i + 1, "daily_readings", 1, n, T, T) for i, n in enumerate(sizes)]
    head = len(sizes) + 3  # batches without the party's rows at the end
    cursor, seen = 0, []
    while cursor < head:
        upto = page_end([c for c in found if c.batch > cursor], head, limit)
        assert upto > cursor
        mine = [c for c in found if cursor < c.batch <= upto]
        if sum(c.rows for c in mine) > limit:
            assert sum(c.rows for c in mine[:-1]) < limit
        seen += [c.batch for c in mine]
        cursor = upto
    assert seen == [c.batch for c in found]


EXAMPLES = itertools.count()


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(st.sampled_from(sorted(EANS)), min_size=1, max_size=4),
    st.integers(1, 30),
    st.sampled_from(["S1", "S2"]),
)
def test_a_supplier_gets_exactly_what_it_may_read_whatever_the_batches(
    client: TestClient, feed: Feed, names: list[str], limit: int, who: str
) -> None:
    """Whatever batches ingestion writes and whatever page size the supplier polls
    with, its feed holds exactly the rows its own reads of the same days give (the
    gate's answer, PRV-1): nothing of another supplier's connections, nothing lost."""
    _, cursor = drain(client, feed, who)
    n = next(EXAMPLES)  # a new day each example: the store lives across examples
    day = date(2025, 8, 2) + timedelta(days=n)
    for name in names:  # one batch per connection, in the drawn order
        at = local_midnight_utc(day)
        feed.ingest("daily_readings", [reading(EANS[name], at, AUG_2 + 1_000 * n)])
    got, _ = drain(client, feed, who, cursor, limit=limit)
    expected = set()
    for name in set(names):
        answer = client.get(
            f"/v1/connections/{EANS[name]}/readings",
            params={"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()},
            headers={"Authorization": f"Bearer {feed.keys[who]}"},
        )
        if answer.status_code == 200:
            expected |= {key(r | {"kind": "daily_readings"}) for r in answer.json()["readings"]}
    assert {key(r) for r in got} == expected
    assert len(got) == len(expected)
    supplied = {"S1": {"normal"}, "S2": {"neighbour", "switched", "moved"}}[who]  # in August
    assert {r["ean"] for r in got} == {EANS[n] for n in supplied & set(names)}


def test_an_app_gets_only_what_the_consent_behind_its_token_names(flow: Flow) -> None:  # noqa: F811
    """The app's feed (``/v1/app/feed`` with its access token) carries the consented
    connection and kinds from the consent's first day on, read as ``app_consent`` and
    audited (PRV-4, PRV-7); no token is 401, and the app's key on ``/v1/feed`` 403."""
    access = tokens(flow)["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    body = flow.client.get("/v1/app/feed", params={"cursor": "0"}, headers=headers).json()
    rows = body["changes"]
    assert rows and {(r["ean"], r["kind"]) for r in rows} == {(EANS["normal"], "daily_readings")}
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    purposes = {(r.entry.purpose, r.entry.event) for r in oauth_records(flow)[-3:]}
    assert purposes >= {("app_consent", "decision"), ("app_consent", "read")}
    again = flow.client.get("/v1/app/feed", params={"cursor": body["next_cursor"]}, headers=headers)
    assert again.json()["changes"] == []
    assert flow.client.get("/v1/app/feed", params={"cursor": "0"}).status_code == 401
    key = {"Authorization": f"Bearer {flow.keys['app']}"}
    assert flow.client.get("/v1/feed", params={"cursor": "0"}, headers=key).status_code == 403


# -- switch and move readings (issue 20, MKT-5): the reading of the day reaches the old
# AND the new supplier once each, marked switch_reading, read under supplier_switch /
# supplier_move and audited; no other party sees it.


def record(feed: Feed, name: str, day: date, event: str, estimated: bool = False) -> int:
    """A switch reading stored as ``meetpunt market switch|move`` stores it."""
    register = open_register(feed.db_url)
    try:
        with register.session() as s:
            cid = s.connection_id(EANS[name], Commodity.ELECTRICITY)
    finally:
        register.dispose()
    store = open_store(feed.store)
    try:
        registers: dict[str, int | None] = {"import_t1_wh": 1_234_000, "import_t2_wh": 567_000}
        at = local_midnight_utc(day)
        return store.record_switch_reading(cid, at, registers, event, estimated, NOW)
    finally:
        store.close()


def switch_rows_of(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [r for r in rows if r["kind"] == "switch_readings"]


def test_the_old_and_the_new_supplier_each_get_the_switch_reading_once(
    client: TestClient,
    feed: Feed,
) -> None:
    _, s1 = drain(client, feed, "S1")
    _, s2 = drain(client, feed, "S2")
    batch = record(feed, "switched", SWITCH, "switch")
    for who, cursor in (("S1", s1), ("S2", s2)):
        rows, _ = drain(client, feed, who, cursor)
        got = switch_rows_of(rows)
        assert len(got) == 1, (who, got)
        assert got[0]["ean"] == EANS["switched"]
        assert got[0]["change"] == "switch_reading"
        assert got[0]["event"] == "switch"
        assert got[0]["seq"] == batch
        assert got[0]["at"] == local_midnight_utc(SWITCH).isoformat()
        assert got[0]["import_t1_wh"] == 1_234_000
        assert got[0]["status"] == "measured"
    new = records(feed.db_url)
    assert {(r.entry.purpose, r.entry.event) for r in new} >= {("supplier_switch", "read")}


def test_a_move_reading_is_read_as_a_move_and_an_estimate_is_marked(
    client: TestClient,
    feed: Feed,
) -> None:
    _, s1 = drain(client, feed, "S1")
    _, s2 = drain(client, feed, "S2")
    record(feed, "moved", MOVE, "move", estimated=True)
    for who, cursor in (("S1", s1), ("S2", s2)):
        got = switch_rows_of(drain(client, feed, who, cursor)[0])
        assert [(r["ean"], r["event"], r["status"]) for r in got] == [
            (EANS["moved"], "move", "estimated_final")
        ], who
    assert ("supplier_move", "read") in {
        (r.entry.purpose, r.entry.event) for r in records(feed.db_url)
    }


def test_no_one_else_gets_a_switch_reading(client: TestClient, feed: Feed) -> None:
    _, s1 = drain(client, feed, "S1")
    _, s2 = drain(client, feed, "S2")
    # S1 supplies "normal" throughout: the day opened or closed no contract of S1's
    record(feed, "normal", SWITCH, "switch")
    # S2 never supplied "normal"
    assert switch_rows_of(drain(client, feed, "S1", s1)[0]) == []
    assert switch_rows_of(drain(client, feed, "S2", s2)[0]) == []
    # the customer's own feed does not carry the suppliers' switch readings
    assert switch_rows_of(drain(client, feed, "de_vries")[0]) == []


def test_a_gas_switch_reading_reaches_both_suppliers_from_the_gas_connection(
    client: TestClient,
    feed: Feed,
) -> None:
    """The gas connection under the same EAN as ``switched`` goes from S1 to S2 on the
    same day: its gas register reaches each once, read from the gas connection (the gate
    takes the gas connection for the gas kind, PRV-1.commodity), apart from the
    electricity reading."""
    ean = EANS["switched"]
    register = open_register(feed.db_url)
    try:
        with register.session() as s:
            s.record_connection(ean, Commodity.GAS, attributes("G4", Commodity.GAS), SINCE)
            s.add_contract(contract(ean, SINCE, SWITCH, supplier=S1), Commodity.GAS)
            s.add_contract(contract(ean, SWITCH, supplier=S2), Commodity.GAS)
            gas = s.connection_id(ean, Commodity.GAS)
    finally:
        register.dispose()
    _, s1 = drain(client, feed, "S1")
    _, s2 = drain(client, feed, "S2")
    store = open_store(feed.store)
    try:
        at = local_midnight_utc(SWITCH)
        batch = store.record_gas_switch_reading(gas, at, 5_400_000, "switch", False, NOW)
    finally:
        store.close()
    record(feed, "switched", SWITCH, "switch")
    for who, cursor in (("S1", s1), ("S2", s2)):
        rows, _ = drain(client, feed, who, cursor)
        got = [r for r in rows if r["kind"] == "gas_switch_readings"]
        assert [(r["ean"], r["seq"], r["reading_dm3"], r["change"]) for r in got] == [
            (ean, batch, 5_400_000, "switch_reading")
        ], who
        assert len(switch_rows_of(rows)) == 1  # the electricity reading, apart
    reads = [r.entry for r in records(feed.db_url) if r.entry.event == "read"]
    assert ("supplier_switch", ("gas_switch_readings",)) in {(e.purpose, e.kinds) for e in reads}
