"""Pure types and rules of meetpunt: no I/O, no clocks, no databases (design rule 6).

Everything here takes values and returns values; rule tables (capacity classes, the
SAP capacity table, ...) are passed in, loaded elsewhere by :mod:`meetpunt.rulebook`.
"""
