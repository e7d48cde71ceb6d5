"""Metaflow's tutorials 00-03, unchanged (tests/flows/metaflow_tutorials), through
``daskflow run``, compared with what Metaflow 2.19 stores for the same files.

The expected values were recorded with Metaflow 2.19.39 in a separate virtual
environment: each tutorial folder copied, ``movies.py`` writing its ``movies.csv``, then
``python FLOW.py run`` (03 with ``--genre Comedy --recommendations 3``) and the results
read with ``from metaflow import Flow``. Metaflow is not needed here. The tutorials need
no package beyond the standard library (01-03 parse the CSV with ``csv``), so nothing is
skipped; their notebooks (matplotlib) are not part of this.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from daskflow import Flow

from .test_metaflow_files import daskflow_run

TUTORIALS = Path(__file__).parent / "flows" / "metaflow_tutorials"


def write_movies(folder: Path) -> None:
    """tests/flows/metaflow_tutorials/movies.py's file, as Metaflow's run read it."""
    spec = importlib.util.spec_from_file_location("tutorial_movies", TUTORIALS / "movies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_movies(folder)


# Metaflow 2.19.39: the public artifacts of each step's (first) task, and its task count.
METAFLOW_STEPS = {
    "HelloFlow": {"start": (1, ["name"]), "hello": (1, ["name"]), "end": (1, ["name"])},
    "PlayListFlow01": {
        "start": (1, ["dataframe", "genre", "movie_data", "name", "recommendations"]),
        "bonus_movie": (1, ["bonus", "dataframe", "genre", "movie_data", "name",
                            "recommendations"]),
        "genre_movies": (1, ["dataframe", "genre", "movie_data", "movies", "name",
                             "recommendations"]),
        "join": (1, ["bonus", "genre", "movie_data", "name", "playlist", "recommendations"]),
        "end": (1, ["bonus", "genre", "movie_data", "name", "playlist", "recommendations"])},
    "MovieStatsFlow": {
        "start": (1, ["dataframe", "genres", "movie_data", "name"]),
        "compute_statistics": (13, ["dataframe", "genre", "genres", "movie_data", "name",
                                    "quartiles"]),
        "join": (1, ["genre_stats", "movie_data", "name"]),
        "end": (1, ["genre_stats", "movie_data", "name"])},
    "PlayListFlow03": {
        "start": (1, ["genre", "genre_stats", "name", "recommendations"]),
        "bonus_movie": (1, ["bonus", "genre", "genre_stats", "name", "recommendations"]),
        "genre_movies": (1, ["genre", "genre_stats", "movies", "name", "recommendations"]),
        "join": (1, ["bonus", "genre", "name", "playlist", "recommendations"]),
        "end": (1, ["bonus", "genre", "name", "playlist", "recommendations"])},
}
# Metaflow 2.19.39: sha256 of json.dumps(value, sort_keys=True), first 16 hex digits, of
# MovieStatsFlow's genre_stats and of the sorted playlists (their order is random).
GENRE_STATS_DIGEST = "fdf952917a5377c4"
SCIFI_PLAYLIST = (101, "c67f356883a6a157")
COMEDY_PLAYLIST = (25, "4e661d2808076a74")
QUARTILES = {"action": [226478273, 456895057, 678458701],
             "sci-fi": [248145409, 457652414, 693718839],
             "thriller": [204811137, 451245416, 681662200]}


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def tutorial(workdir: Path, folder: str) -> Path:
    """The tutorial's folder copied, with the shared movies.csv beside its flow."""
    target = workdir / folder
    shutil.copytree(TUTORIALS / folder, target)
    write_movies(target)
    return target


def stored_steps(run) -> dict[str, tuple[int, list[str]]]:
    steps = {}
    for step in run:
        tasks = list(step)
        steps[step.id] = (len(tasks), sorted(a.id for a in tasks[0].artifacts))
    return steps


@pytest.fixture
def user(monkeypatch):
    monkeypatch.setenv("USER", "ana")
    import daskflow
    daskflow.default_namespace()


def test_tutorials_00_to_03_run_unchanged_and_store_what_metaflow_stores(workdir, user):
    hello = tutorial(workdir, "00-helloworld")
    result = daskflow_run(workdir, str(hello / "helloworld.py"), "run")
    assert result.returncode == 0, result.stderr
    run = Flow("HelloFlow").latest_run
    assert stored_steps(run) == METAFLOW_STEPS["HelloFlow"]
    assert run["hello"].task.stdout == "Metaflow says: Hi!\n"

    playlist = tutorial(workdir, "01-playlist")
    result = daskflow_run(workdir, str(playlist / "playlist.py"), "run")
    assert result.returncode == 0, result.stderr
    run = Flow("PlayListFlow").latest_run
    assert stored_steps(run) == METAFLOW_STEPS["PlayListFlow01"]
    end = run["end"].task
    assert (len(end.data.playlist), digest(sorted(end.data.playlist))) == SCIFI_PLAYLIST
    assert "sci-fi" not in end.data.bonus[1].lower()
    picks = end.stdout.splitlines()
    assert picks[0] == "Playlist for movies in genre 'Sci-Fi'"
    assert picks[1:6] == [f"Pick {i}: '{m}'" for i, m in enumerate(end.data.playlist[:5], 1)]

    stats = tutorial(workdir, "02-statistics")
    result = daskflow_run(workdir, str(stats / "stats.py"), "run")
    assert result.returncode == 0, result.stderr
    run = Flow("MovieStatsFlow").latest_run
    assert stored_steps(run) == METAFLOW_STEPS["MovieStatsFlow"]
    genre_stats = run.data.genre_stats
    assert digest(genre_stats) == GENRE_STATS_DIGEST
    assert {g: genre_stats[g]["quartiles"] for g in QUARTILES} == QUARTILES

    redux = tutorial(workdir, "03-playlist-redux")
    result = daskflow_run(workdir, str(redux / "playlist.py"), "run", "--genre", "Comedy",
                          "--recommendations", "3")
    assert result.returncode == 0, result.stderr
    run = Flow("PlayListFlow").latest_run
    assert stored_steps(run) == METAFLOW_STEPS["PlayListFlow03"]
    start = run["start"].task.stdout.splitlines()
    assert start[0] == f"Using metadata provider: local@{workdir}"
    assert start[1] == f"Using analysis from 'Run('MovieStatsFlow/{Flow('MovieStatsFlow').latest_run.id}')'"
    end = run["end"].task
    assert (len(end.data.playlist), digest(sorted(end.data.playlist))) == COMEDY_PLAYLIST
    assert len(end.stdout.splitlines()) == 1 + 3 + 1  # title, 3 picks, the bonus pick
