"""The approved use cases of seed 001, each reading meter data only through the gate."""
