"""The approved use cases (UC1..UC15, docs/requirements.md), each reading meter data only
through the gate."""
