"""Column names shared by every source of tracks and audio features.

Spotify describes a track with eleven audio features; the notebook clustered on the nine
continuous ones (``key`` and ``mode`` are categorical, so they stay out of the mixture).
"""

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
