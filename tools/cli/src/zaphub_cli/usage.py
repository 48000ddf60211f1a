"""`zaphub usage`: the tenant's rate-limit windows."""

from zaphub_cli import output
from zaphub_cli.client import connect
from zaphub_cli.output import JsonFlag


def usage(as_json: JsonFlag = False) -> None:
    """The tenant's rate-limit windows: used, limit, and when the oldest token frees."""
    with connect() as api:
        answer = api.get("/usage")
    output.emit(
        as_json,
        answer,
        lambda a: output.table(
            ("window", "used", "limit", "frees at"),
            ((w["window"], w["used"], w["limit"], w.get("resets_at")) for w in a["windows"]),
        ),
    )
