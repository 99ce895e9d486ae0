"""Column names shared by every source of tracks and audio features, and the values a track's
own fields may take.

Spotify describes a track with eleven audio features; the notebook clustered on the nine
continuous ones (``key`` and ``mode`` are categorical, so they stay out of the mixture).
"""

import datetime

SPOTIFY_FEATURE_COLUMNS: tuple[str, ...] = (
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
)

SPOTIFY_CLUSTER_FEATURES: tuple[str, ...] = tuple(
    name for name in SPOTIFY_FEATURE_COLUMNS if name not in ("key", "mode")
)

PITCH_CLASSES: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

#: Release years a track may have: recorded music, up to next year's announced releases.
FIRST_RELEASE_YEAR = 1900
#: Longest plausible track, in milliseconds (a day).
MAX_DURATION_MS = 86_400_000


def last_release_year() -> int:
    return datetime.date.today().year + 1
