"""The grid twin: a simulated Dutch LV region whose truth is known.

It writes a register the register package imports, meter data per kind as Parquet,
P1 telegram files and a ``truth/`` folder, so every use case can be measured for
accuracy and every demo runs without private data. See ``meetpunt twin generate``.
"""
