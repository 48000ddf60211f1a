"""The `zaphub` command tree: `zaphub <noun> <verb>`, as gh and kubectl."""

import typer

from zaphub_cli import auth

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


def main() -> None:
    app()
