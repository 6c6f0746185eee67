"""Issuing new EANs from the operator's prefix (REG-1, Netcode art. 2.4).

A new secondary allocation point needs a code of its own; codes are numbered from the
operator's prefix, and a code already on any allocation point is skipped, so no EAN
is ever reused.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update

from meetpunt.domain.ean import ean_from_serial
from meetpunt.register import schema as t
from meetpunt.register.base import SessionBase


class EanIssuing(SessionBase):
    """The operator's EAN sequence."""

    def next_ean(self) -> str:
        """A new, never used EAN from the operator's prefix (REG-1, Netcode art. 2.4)."""
        prefix = self.rules.ean_prefix
        seq = t.ean_sequence
        serial = self._conn.execute(
            select(seq.c.next_serial).where(seq.c.prefix == prefix).with_for_update()
        ).scalar()
        if serial is None:
            serial = 1
            self._conn.execute(insert(seq).values(prefix=prefix, next_serial=serial))
        while True:
            ean = ean_from_serial(prefix, serial)
            serial += 1
            used = self._conn.execute(
                select(t.allocation_point.c.id).where(t.allocation_point.c.ean == ean)
            ).first()
            if used is None:
                break
        self._conn.execute(update(seq).where(seq.c.prefix == prefix).values(next_serial=serial))
        return ean
