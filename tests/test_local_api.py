"""When the CLI starts Prefect's local API itself: only where Prefect would have used it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows._local_api import api_chosen_elsewhere


@pytest.fixture()
def places(tmp_path) -> tuple[dict[str, str], Path]:
    """An environment with its own PREFECT_HOME and an empty working directory."""
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    return {"PREFECT_HOME": str(home), "PATH": "/usr/bin"}, cwd


def _profiles(env: dict[str, str], text: str) -> None:
    (Path(env["PREFECT_HOME"]) / "profiles.toml").write_text(text)


def test_nothing_chosen_anywhere(places):
    env, cwd = places
    assert not api_chosen_elsewhere(env, cwd)
    (cwd / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (cwd / ".env").write_text("DATABASE=postgres://db\n")
    assert not api_chosen_elsewhere(env, cwd)


@pytest.mark.parametrize(("name", "value"), [("PREFECT_API_URL", "http://h:4200/api"),
                                             ("PREFECT_SERVER_EPHEMERAL_ENABLED", "false")])
def test_the_environment_chooses(places, name, value):
    env, cwd = places
    assert api_chosen_elsewhere({**env, name: value}, cwd)


def test_only_the_active_profile_counts(places):
    env, cwd = places
    _profiles(env, 'active = "ephemeral"\n[profiles.ephemeral]\n'
                   'PREFECT_SERVER_EPHEMERAL_ENABLED = "true"\n'
                   '[profiles.local]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n')
    assert not api_chosen_elsewhere(env, cwd)
    assert api_chosen_elsewhere({**env, "PREFECT_PROFILE": "local"}, cwd)
    _profiles(env, 'active = "local"\n'
                   '[profiles.local]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n')
    assert api_chosen_elsewhere(env, cwd)


def test_a_profile_that_switches_the_local_api_off(places):
    env, cwd = places
    _profiles(env, 'active = "off"\n[profiles.off]\nPREFECT_SERVER_EPHEMERAL_ENABLED = "false"\n')
    assert api_chosen_elsewhere(env, cwd)


def test_a_profiles_path_elsewhere(places, tmp_path):
    env, cwd = places
    other = tmp_path / "other.toml"
    other.write_text('active = "x"\n[profiles.x]\nPREFECT_API_URL = "http://h/api"\n')
    assert api_chosen_elsewhere({**env, "PREFECT_PROFILES_PATH": str(other)}, cwd)


@pytest.mark.parametrize(("name", "text"), [
    ("prefect.toml", '[api]\nurl = "http://h:4200/api"\n'),
    ("prefect.toml", "[server.ephemeral]\nenabled = false\n"),
    ("pyproject.toml", '[tool.prefect.api]\nurl = "http://h:4200/api"\n'),
    (".env", "PREFECT_API_URL=http://h:4200/api\n"),
    (".env", "PREFECT_HOME=/somewhere/else\n"),
])
def test_the_working_directory_chooses(places, name, text):
    env, cwd = places
    (cwd / name).write_text(text)
    assert api_chosen_elsewhere(env, cwd)


def test_an_unreadable_profile_leaves_it_to_prefect(places):
    env, cwd = places
    _profiles(env, "active = [not toml")
    assert api_chosen_elsewhere(env, cwd)


def test_the_package_is_light_enough_to_start_the_api_before_prefect():
    """``python -m flows.train`` imports ``flows`` first: once it imported Prefect (through a
    logging filter's exception class), the API started after Prefect, by Prefect, 10 s later."""
    done = subprocess.run([sys.executable, "-c", "import sys, flows; print(sorted("
                           "m for m in ('prefect', 'pandas', 'sklearn') if m in sys.modules))"],
                          capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert done.stdout.strip() == "[]", done.stderr
