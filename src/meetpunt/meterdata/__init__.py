"""The meter-data hub (MTR-1..6): kinds, VEE, ingestion, the DuckDB store, retention.

Data flows raw -> validated -> curated (:mod:`~meetpunt.meterdata.ingest`); every kind's
table is keyed by the register's connection id and declares its merge policy
(:mod:`~meetpunt.meterdata.kinds`). The rule IDs of the checks are listed in
``docs/meterdata.md``.
"""

from meetpunt.meterdata.ingest import BatchReport, ConnectionIndex, Ingestor, KindReport
from meetpunt.meterdata.kinds import KINDS, Kind
from meetpunt.meterdata.source import Refusal, SourceData
from meetpunt.meterdata.store import MeterStore, default_store_path, open_store

__all__ = [
    "KINDS",
    "BatchReport",
    "ConnectionIndex",
    "Ingestor",
    "Kind",
    "KindReport",
    "MeterStore",
    "Refusal",
    "SourceData",
    "default_store_path",
    "open_store",
]
