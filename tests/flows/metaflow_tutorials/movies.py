"""A small ``movies.csv`` for Metaflow's tutorials, the same on every machine.

The tutorials read ``movies.csv`` beside their flow file (columns movie_title,
title_year, genres, gross); Metaflow's own is 196 KB, so the tests write this one
instead: integer arithmetic only (no random module, whose algorithms may change), so
Metaflow 2.19 and daskflow read the very same bytes and their results can be compared.
``python movies.py FOLDER`` writes it into FOLDER.
"""

from __future__ import annotations

import csv
import os
import sys

GENRES = ["Action", "Adventure", "Animation", "Comedy", "Crime", "Drama", "Family",
          "Fantasy", "Horror", "Mystery", "Romance", "Sci-Fi", "Thriller"]
ROWS = 400


def movie_rows(count: int = ROWS) -> list[dict[str, object]]:
    rows = []
    for i in range(count):
        mix = (i * 2654435761) % 2**32
        genres = [g for bit, g in enumerate(GENRES) if mix >> (bit * 2) & 3 == 0]
        if not genres:
            genres = [GENRES[i % len(GENRES)]]
        rows.append({"movie_title": f"Movie {i:03d}", "title_year": 1970 + (i * 7) % 50,
                     "genres": "|".join(genres),
                     "gross": (i * 7919 * 104729 + 12345) % 900_000_000 + 10_000})
    return rows


def write_movies(folder: str | os.PathLike, count: int = ROWS) -> str:
    path = os.path.join(folder, "movies.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["movie_title", "title_year", "genres", "gross"])
        writer.writeheader()
        writer.writerows(movie_rows(count))
    return path


if __name__ == "__main__":
    print(write_movies(sys.argv[1]))
