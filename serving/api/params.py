"""Path and query parameters of the API, validated at the edge (422 with a message, never a 500)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from serving.schemas import Text

Uscc = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z]+$", description="统一社会信用代码")]
LeadId = Annotated[int, Path(ge=1, le=2**31 - 1, description="lead id")]
MessageId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_.:-]+$")]
PageNo = Annotated[int, Query(ge=1, le=100_000, description="page number, from 1")]
PageSize = Annotated[int, Query(ge=1, le=500, description="rows per page")]
Filter = Annotated[Text | None, Query(min_length=1, max_length=64)]
City = Annotated[Text | None, Query(min_length=1, max_length=64,
                                    description="one city's rows (a store that holds a province's cities)")]
