"""The `zaphub` command tree: `zaphub <noun> <verb>`, as gh and kubectl."""

import typer

from zaphub_cli import auth, events, messages, sessions, tenants, usage, webhooks

app = typer.Typer(
    name="zaphub",
    no_args_is_help=True,
    help="ZapHub from the command line: sessions, messages, events, webhooks and tenants.\n\n"
    "Log in once (zaphub login --url URL --key KEY) or set ZAPHUB_URL and ZAPHUB_KEY.",
    epilog="Exit codes: 0 ok, 1 the API refused or could not be reached, 2 a usage error.",
    pretty_exceptions_show_locals=False,  # a traceback must never print the API key
)
app.command()(auth.login)
app.command()(auth.logout)
app.add_typer(sessions.app, name="sessions")
app.command()(messages.send)
app.add_typer(messages.app, name="messages")
app.add_typer(events.app, name="events")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(tenants.app, name="tenants")
app.command()(usage.usage)


def main() -> None:
    app()
