"""The application layer: the wiring above the packages (register, hub, gate).

The CLI, the demo and (later) the HTTP API call these functions; they open a register
and a store, run ingestion, retention and the use cases' gate, and close what they
opened. Nothing below this layer imports it. ``hub`` (ingestion, retention,
quarantine, completeness areas), ``gate`` (``open_gate``).
"""
