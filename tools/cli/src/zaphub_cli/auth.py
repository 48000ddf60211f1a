"""`zaphub login` and `zaphub logout`: the API's URL and keys, checked, in the config file."""

from typing import Annotated

import typer

from zaphub_cli import config, output
from zaphub_cli.client import Api, ApiProblem, reporting
from zaphub_cli.output import JsonFlag


def kind_of(api: Api) -> str:
    """`tenant` or `admin`, by which routes take the key; `ApiProblem` when neither does (e.g. 401)."""
    try:
        api.get("/sessions", limit=1)
        return "tenant"
    except ApiProblem as problem:
        if problem.status != 403:
            raise
    api.get("/tenants", limit=1)
    return "admin"


def login(
    url: Annotated[
        str | None,
        typer.Option(
            envvar="ZAPHUB_URL", help=f"The API's address; the saved one, else {config.DEFAULT_URL}."
        ),
    ] = None,
    key: Annotated[
        str, typer.Option(prompt="API key", hide_input=True, help="A tenant's API key or the admin key.")
    ] = "",
    as_json: JsonFlag = False,
) -> None:
    """Check an API key against the API and keep it in the config file (mode 0600).

    A tenant's key is kept for the tenant commands, the admin key for `zaphub tenants`; both can be
    kept. ZAPHUB_URL, ZAPHUB_KEY and ZAPHUB_ADMIN_KEY override the file.
    """
    path = config.config_path()
    with reporting():
        saved = config.read_file(path)
        with Api(url or saved.url, key.strip()) as api:
            kind = kind_of(api)
        if saved.url != api.url:
            saved = config.Config(url=api.url)  # the keys kept belong to another deployment
        config.save(config.with_key(saved, key.strip(), admin=kind == "admin"), path)
    result = {"url": api.url, "kind": kind, "config": str(path)}
    output.emit(
        as_json,
        result,
        lambda r: output.line(f"Logged in to {r['url']} with the {kind} key; saved in {path}"),
    )


def logout(as_json: JsonFlag = False) -> None:
    """Forget the URL and keys: delete the config file."""
    path = config.config_path()
    existed = path.exists()
    path.unlink(missing_ok=True)
    result = {"config": str(path), "removed": existed}
    output.emit(
        as_json,
        result,
        lambda r: output.line(
            f"Logged out: removed {path}" if existed else f"Not logged in ({path} does not exist)"
        ),
    )
