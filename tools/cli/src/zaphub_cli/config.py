"""Where the CLI finds the API and its keys: `config.toml` in the XDG config dir, overridden by the
environment (`ZAPHUB_URL`, `ZAPHUB_KEY`, `ZAPHUB_ADMIN_KEY`)."""

import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import tomli_w

DEFAULT_URL = "http://127.0.0.1:3000"
FILE_NAME = "config.toml"


class ConfigError(Exception):
    """The config file exists but cannot be read."""


@dataclass(frozen=True)
class Config:
    """`key` is a tenant's key; `admin_key` the operator's, for `zaphub tenants`."""

    url: str = DEFAULT_URL
    key: str | None = None
    admin_key: str | None = None

    def admin(self) -> str | None:
        """The admin routes take the admin key, or whatever key was given when there is none."""
        return self.admin_key or self.key


def config_dir(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "zaphub"


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    return config_dir(env) / FILE_NAME


def read_file(path: Path) -> Config:
    """The saved config; the defaults when there is no file."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return Config()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return Config(
        url=str(data.get("url") or DEFAULT_URL),
        key=_str_or_none(data.get("key")),
        admin_key=_str_or_none(data.get("admin_key")),
    )


def load(env: Mapping[str, str] = os.environ) -> Config:
    """The file's config with the environment's variables on top."""
    saved = read_file(config_path(env))
    # An environment key replaces both saved keys: `ZAPHUB_KEY=... zaphub tenants list` uses it.
    env_key = env.get("ZAPHUB_KEY") or None
    return Config(
        url=env.get("ZAPHUB_URL") or saved.url,
        key=env_key or saved.key,
        admin_key=env.get("ZAPHUB_ADMIN_KEY") or env_key or saved.admin_key,
    )


def save(config: Config, path: Path) -> None:
    """Write the file readable by its owner only (0600, its folder 0700), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = {k: v for k, v in vars(config).items() if v is not None}
    # mkstemp creates the file 0600, so the key is never readable by others, not even for a moment.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".toml")
    try:
        with os.fdopen(fd, "wb") as out:
            tomli_w.dump(body, out)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def with_key(config: Config, key: str, admin: bool) -> Config:
    return replace(config, admin_key=key) if admin else replace(config, key=key)


def _str_or_none(value: object) -> str | None:
    return str(value) if value else None
