"""The query parameters of every list route, bounded: a page is at most `MAX_LIMIT` items and starts at
most `MAX_OFFSET` items in (PostgreSQL's OFFSET reads what it skips; a value past 2^63 would not even
reach it). A value outside its range is a 422 naming the parameter."""

from typing import Annotated

from litestar.params import Parameter

MAX_LIMIT = 500
MAX_OFFSET = 100_000


Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}")]
Offset = Annotated[int, Parameter(ge=0, le=MAX_OFFSET, description=f"Items to skip, 0 to {MAX_OFFSET}")]
