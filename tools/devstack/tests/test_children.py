"""Restart backoff and the admin key file."""

import stat
from pathlib import Path

from zaphub_devstack.admin_key import PREFIX, load_or_create
from zaphub_devstack.children import Backoff


def test_backoff_doubles_up_to_the_cap_and_resets_after_a_long_run() -> None:
    """Quick deaths wait 0.5, 1, 2, 4, 5, 5 s; a run of 30 s or more starts over at 0.5 s."""
    backoff = Backoff()
    assert [backoff.after_run_of(1) for _ in range(6)] == [0.5, 1, 2, 4, 5, 5]
    assert backoff.after_run_of(31) == 0.5
    assert backoff.after_run_of(1) == 1


def test_admin_key_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    """The first start writes a 0600 key file; later starts read the same key."""
    key = load_or_create(tmp_path)
    assert key.startswith(PREFIX)
    assert stat.S_IMODE((tmp_path / "admin_key").stat().st_mode) == 0o600
    assert load_or_create(tmp_path) == key


def test_admin_key_from_the_environment_wins(tmp_path: Path) -> None:
    """ZAPHUB_ADMIN_KEY is used as is and nothing is written."""
    assert load_or_create(tmp_path, "zh_admin_given") == "zh_admin_given"
    assert not (tmp_path / "admin_key").exists()
