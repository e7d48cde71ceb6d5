"""Settings: defaults shipped in daskflow.yaml, merged into dask.config the way every Dask
project does it, and overridden by a user's YAML file, the environment or a keyword."""

from __future__ import annotations

import re
from pathlib import Path

import dask.config
import pytest

from daskflow import config
from daskflow.config import _DEFAULTS

pytestmark = pytest.mark.fast

CONFIG_PAGE = Path(__file__).parents[1] / "docs" / "configuration.md"

def leaves(tree: dict, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    """Each setting by its path of keys (a key may hold a dot: an instance type, t3.micro)."""
    found: dict[tuple[str, ...], object] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            found.update(leaves(value, (*path, key)))
        else:
            found[(*path, key)] = value
    return found


def at(tree: dict, path: tuple[str, ...]) -> object:
    for key in path:
        tree = tree[key]
    return tree


def collected(tmp_path: Path, env: dict[str, str]) -> dict:
    """dask.config as a fresh process with this config folder and environment gets it."""
    settings: dict = {}
    dask.config.refresh(config=settings, defaults=dask.config.defaults, paths=[str(tmp_path)],
                        env=env)
    return settings


def test_every_shipped_default_is_in_dask_config_with_nothing_else_set(tmp_path) -> None:
    settings = collected(tmp_path, env={})
    shipped = leaves(_DEFAULTS["daskflow"])
    assert len(shipped) > 50
    for path, value in shipped.items():
        assert at(settings["daskflow"], path) == value, path


def test_a_users_yaml_file_overrides_one_key_and_keeps_its_siblings(tmp_path) -> None:
    (tmp_path / "daskflow.yaml").write_text(
        "daskflow:\n  run:\n    max-workers: 4\n  cluster:\n    backend: slurm\n")
    settings = collected(tmp_path, env={})
    run = settings["daskflow"]["run"]
    assert run["max-workers"] == 4
    assert run["max-num-splits"] == _DEFAULTS["daskflow"]["run"]["max-num-splits"]
    assert settings["daskflow"]["cluster"]["backend"] == "slurm"
    assert settings["daskflow"]["cluster"]["tls"] is True


def test_environment_variables_override_with_values_read_as_yaml(tmp_path) -> None:
    (tmp_path / "daskflow.yaml").write_text("daskflow:\n  run:\n    max-workers: 4\n")
    settings = collected(tmp_path, env={"DASK_DASKFLOW__RUN__MAX_WORKERS": "8",
                                        "DASK_DASKFLOW__CLUSTER__TLS": "false",
                                        "DASK_DASKFLOW__DATASTORE__ROOT": "s3://bucket/flows"})
    assert settings["daskflow"]["run"]["max-workers"] == 8      # over the file
    assert settings["daskflow"]["cluster"]["tls"] is False
    assert settings["daskflow"]["datastore"]["root"] == "s3://bucket/flows"


def test_a_keyword_wins_over_the_setting_and_none_means_not_given() -> None:
    with dask.config.set({"daskflow.run.max-num-splits": 7}):
        assert config.get("run.max-num-splits") == 7
        assert config.get("run.max-num-splits", override_with=3) == 3
        assert config.get("run.max-num-splits", override_with=None) == 7


def test_the_configuration_page_lists_shipped_settings_with_their_defaults() -> None:
    rows = re.findall(r"^\| `([a-z0-9.-]+)` \| ([^|]*) \|", CONFIG_PAGE.read_text(),
                      re.MULTILINE)
    assert len(rows) > 30
    shipped = {".".join(path): value for path, value in leaves(_DEFAULTS["daskflow"]).items()}
    for key, default in rows:
        assert key in shipped, f"docs/configuration.md lists {key}, which daskflow.yaml lacks"
        value = shipped[key]
        if isinstance(value, (str, int, float)):  # a list or null is described in words
            written = str(value).lower() if isinstance(value, bool) else str(value)
            assert default.strip("` ") == written, (key, default, value)
