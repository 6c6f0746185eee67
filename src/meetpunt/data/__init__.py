"""Versioned rule files (TOML), each with its source; loaded by meetpunt.rulebook."""
