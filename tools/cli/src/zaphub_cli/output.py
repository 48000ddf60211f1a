"""What the CLI prints: the API's JSON for scripts (`--json`), tables and details for people, errors and
spinners on stderr so that stdout stays clean, and QR codes drawn in the terminal."""

import io
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

import segno
import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]
# Tables are never squeezed to the terminal (a narrow one wraps the lines, as with kubectl), and piped
# output is never wrapped, so that `grep` and `awk` see one row per line.
WIDE = 1000


def console(stderr: bool = False, wide: bool = False) -> Console:
    """A console on the current stdout (or stderr), made per call so that redirections take effect."""
    stream = sys.stderr if stderr else sys.stdout
    width = WIDE if wide or not stream.isatty() else None
    return Console(file=stream, highlight=False, width=width, soft_wrap=False)


def show(renderable: RenderableType) -> None:
    """Print a table on stdout at its natural width, without the padding rich gives its last column."""
    out = console(wide=True)
    with out.capture() as captured:
        out.print(renderable)
    sys.stdout.write("".join(row.rstrip() + "\n" for row in captured.get().splitlines()))


def print_json(data: Any, compact: bool = False) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=None if compact else 2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit(as_json: bool, data: T, render: Callable[[T], None]) -> None:
    """The API's JSON with `--json`, else what `render` makes of it."""
    if as_json:
        print_json(data)
    else:
        render(data)


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], empty: str = "Nothing found.") -> None:
    """A kubectl-style table: upper-case headers, no borders, one row per line."""
    grid = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    for name in columns:
        grid.add_column(name.upper(), no_wrap=True, overflow="ignore")
    count = 0
    for row in rows:
        grid.add_row(*(cell(v) for v in row))
        count += 1
    if count:
        show(grid)
    else:
        note(empty)


def details(pairs: Iterable[tuple[str, object]]) -> None:
    """`Name: value` lines of one resource, the values aligned; empty values are left out."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for name, value in pairs:
        if value not in (None, "", []):
            grid.add_row(f"{name}:", cell(value))
    show(grid)


def line(text: str) -> None:
    console().print(Text(text))


def note(text: str) -> None:
    """A remark for people, on stderr."""
    console(stderr=True).print(Text(text), style="dim")


def error(text: str) -> None:
    console(stderr=True).print(Text.assemble(("Error: ", "bold red"), text))


def problem(status: int, title: str, detail: str, fields: Sequence[tuple[str, str]]) -> None:
    """A refusal of the API: its title and detail, and each field it names."""
    err = console(stderr=True)
    err.print(Text.assemble(("Error: ", "bold red"), (title, "bold"), f" (HTTP {status})"))
    if detail and detail != title:
        err.print(Text(detail))
    for name, message in fields:
        said = not message or message in detail  # the API's detail often already quotes the message
        err.print(Text.assemble(("Field: ", "bold"), name, "" if said else f": {message}"))


@contextmanager
def spinner(text: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr while the block waits, drawn only on a terminal; the block gets a function
    that changes its text."""
    err = console(stderr=True)
    wheel = Spinner("dots", Text(text))
    if not err.is_terminal:
        yield lambda _: None
        return
    # No redirection of stdout: what a command prints meanwhile (JSON lines) must stay on stdout.
    with Live(wheel, console=err, transient=True, redirect_stdout=False, redirect_stderr=False):
        yield lambda new: wheel.update(text=Text(new))


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, str) and _looks_like_time(value):
        return when(value)
    return str(value)


def when(iso: str | None) -> str:
    """An API timestamp in local time, to the second."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def clock(iso: str | None) -> str:
    """An API timestamp as the local time of day, for streams of events."""
    try:
        return datetime.fromisoformat(iso or "").astimezone().strftime("%H:%M:%S")
    except ValueError:
        return iso or ""


def phone(jid: str | None) -> str:
    """`5511999998888:12@s.whatsapp.net` as `+5511999998888`; other JIDs as they are."""
    if not jid:
        return ""
    user, _, server = jid.partition("@")
    user = user.split(":")[0]
    return f"+{user}" if server == "s.whatsapp.net" and user.isdigit() else jid


def _looks_like_time(value: str) -> bool:
    return len(value) >= 20 and value[4] == "-" and value[10] == "T"


def qr_text(qr: str) -> str:
    """The QR code in Unicode half blocks, two rows of modules per line, with a quiet zone."""
    out = io.StringIO()
    segno.make(qr, error="l").terminal(out=out, compact=True, border=2)
    return out.getvalue()


class QrScreen:
    """Shows each new QR code: redrawn in place under a spinner on a terminal, printed one after the
    other (with the time it expires) when piped, or as one JSON line each with `--json`."""

    def __init__(self, as_json: bool) -> None:
        self._as_json = as_json
        self._console = console(stderr=as_json)
        self._live: Live | None = None
        self._qr: Text | None = None
        self._spinner = Spinner("dots", Text("Waiting for the session's QR code..."))

    def __enter__(self) -> "QrScreen":
        if self._console.is_terminal:
            # A QR code taller than the terminal is shown whole (it scrolls) rather than cut: cut, it
            # would not scan.
            self._live = Live(
                self._spinner,
                console=self._console,
                transient=True,
                vertical_overflow="visible",
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def show(self, code: dict[str, Any]) -> None:
        """A QR code as `GET /sessions/{id}/qr` answers it."""
        if self._as_json:
            print_json(code, compact=True)
            return
        caption = "Scan it with WhatsApp: Settings > Linked devices > Link a device"
        if code.get("expires_at"):
            caption += f" (a new code comes at {clock(code['expires_at'])})"
        if self._live is None:
            self._console.print(Text(qr_text(code["qr"])))
            self._console.print(Text(caption))
            return
        self._qr = Text(qr_text(code["qr"]))
        self._spinner.update(text=Text(caption))
        self._live.update(Group(self._qr, self._spinner))

    def status(self, text: str) -> None:
        """What the session is doing, under the spinner until a QR code shows."""
        if self._qr is None or self._as_json:
            self._spinner.update(text=Text(text))
