"""Request parameters shared by the API's routes (issue 17): local days and EANs."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Path, Query

From = Annotated[date, Query(alias="from", description="First local day (YYYY-MM-DD).")]
To = Annotated[date, Query(alias="to", description="Local day after the last (exclusive).")]
EAN = Annotated[str, Path(pattern=r"^\d{18}$", description="The connection's EAN-18.")]
