"""A deterministic, seeded demo catalog of Spotify-shaped tracks with known genre groups.

The catalog stands in for ``GET /v1/search?q=year:2020`` and ``GET /v1/audio-features`` when the
pipeline runs offline. Every track belongs to one genre-like group; each group draws its audio
features from its own distributions, so a mixture model on the nine standardized continuous
features (``SPOTIFY_CLUSTER_FEATURES``) can recover the groups, and the ground truth (group, tempo,
key, mode) is kept beside the tracks for validation.

Conventions: features follow Spotify's ranges (unit-interval features in [0, 1], ``loudness`` in
dB within [-60, 0], ``tempo`` in BPM, ``key`` a pitch class 0-11 with 0 = C, ``mode`` 1 = major,
0 = minor). Everything derives from the arguments of :func:`generate_catalog`; the same arguments
give the same catalog, byte for byte, on any machine.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

# Bump when the generated tracks, features or the audio rendered from them (demo_audio) change:
# the fingerprint keys every cache of demo data, rendered previews included.
GENERATOR_VERSION = "3"

SPOTIFY_API_URL = "https://api.spotify.com/v1"
MAX_TRACKS = 99_999  # ISRC designation codes have five digits
# Tracks are drawn in blocks of this many, each from its own random stream, so the catalog of
# n tracks is the first n tracks of every larger one (same ids, features and truth): runs of
# different sizes on one warehouse agree about the tracks they share.
BLOCK_TRACKS = 1000
UNIT_FEATURES: tuple[str, ...] = (
    "danceability",
    "energy",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
)
TRUTH_COLUMNS: tuple[str, ...] = (
    "track_id",
    "group",
    "group_name",
    "audio_track_id",
    "audio_group",
    "tempo",
    "key",
    "mode",
)


@dataclass(frozen=True)
class GenrePrototype:
    """How one genre-like group draws its tracks.

    Attributes
    ----------
    name : str
        Group name, lowercase with dashes (also accepted by the demo server's ``genre:`` filter).
    unit_means : Mapping[str, float]
        Mean of each of :data:`UNIT_FEATURES`; each is drawn from a Beta distribution with this
        mean and ``concentration``.
    concentration : float
        Beta concentration (a + b): larger means tighter groups.
    loudness_db : tuple[float, float]
        Mean and standard deviation of ``loudness`` in dB at the group's mean energy.
    tempo_bpm : tuple[float, float]
        Range of ``tempo``, drawn uniformly. Kept within 60-175 BPM, where aubio's beat tracker
        reports the tempo itself rather than half or double it.
    major_probability : float
        Probability that ``mode`` is 1 (major).
    favoured_keys : tuple[int, ...]
        Pitch classes drawn more often than the rest (guitar keys for rock, ...).
    time_signatures : tuple[int, ...]
        Beats per bar to draw from, uniformly.
    duration_s : tuple[float, float]
        Range of the track length in seconds, drawn uniformly.
    popularity : tuple[float, float]
        Mean and standard deviation of ``popularity`` (0-100).
    """

    name: str
    unit_means: Mapping[str, float]
    concentration: float
    loudness_db: tuple[float, float]
    tempo_bpm: tuple[float, float]
    major_probability: float
    favoured_keys: tuple[int, ...]
    time_signatures: tuple[int, ...]
    duration_s: tuple[float, float]
    popularity: tuple[float, float]


def _unit_means(
    danceability: float,
    energy: float,
    speechiness: float,
    acousticness: float,
    instrumentalness: float,
    liveness: float,
    valence: float,
) -> dict[str, float]:
    return dict(zip(UNIT_FEATURES, (danceability, energy, speechiness, acousticness,
                                    instrumentalness, liveness, valence)))


# Ordered so that the first groups are the most distinct: a catalog with n_groups groups takes
# the first n_groups prototypes.
GENRE_PROTOTYPES: tuple[GenrePrototype, ...] = (
    GenrePrototype(
        name="acoustic-folk",
        unit_means=_unit_means(0.52, 0.30, 0.04, 0.86, 0.04, 0.13, 0.48),
        concentration=30.0,
        loudness_db=(-12.0, 2.0),
        tempo_bpm=(92.0, 118.0),
        major_probability=0.75,
        favoured_keys=(0, 2, 7, 9),
        time_signatures=(3, 4, 4),
        duration_s=(170.0, 260.0),
        popularity=(48.0, 12.0),
    ),
    GenrePrototype(
        name="edm",
        unit_means=_unit_means(0.70, 0.88, 0.06, 0.03, 0.72, 0.18, 0.42),
        concentration=30.0,
        loudness_db=(-4.5, 1.2),
        tempo_bpm=(122.0, 130.0),
        major_probability=0.35,
        favoured_keys=(5, 9, 7, 1),
        time_signatures=(4,),
        duration_s=(180.0, 300.0),
        popularity=(55.0, 12.0),
    ),
    GenrePrototype(
        name="hip-hop",
        unit_means=_unit_means(0.80, 0.62, 0.30, 0.14, 0.01, 0.14, 0.50),
        concentration=30.0,
        loudness_db=(-6.5, 1.5),
        tempo_bpm=(84.0, 100.0),
        major_probability=0.45,
        favoured_keys=(1, 6, 8, 11),
        time_signatures=(4,),
        duration_s=(150.0, 230.0),
        popularity=(65.0, 12.0),
    ),
    GenrePrototype(
        name="ambient-classical",
        unit_means=_unit_means(0.25, 0.12, 0.04, 0.93, 0.88, 0.10, 0.18),
        concentration=30.0,
        loudness_db=(-22.0, 3.0),
        tempo_bpm=(66.0, 84.0),
        major_probability=0.55,
        favoured_keys=(0, 2, 3, 5, 10),
        time_signatures=(3, 4),
        duration_s=(200.0, 420.0),
        popularity=(30.0, 10.0),
    ),
    GenrePrototype(
        name="rock",
        unit_means=_unit_means(0.45, 0.86, 0.05, 0.05, 0.05, 0.36, 0.52),
        concentration=30.0,
        loudness_db=(-5.5, 1.2),
        tempo_bpm=(136.0, 164.0),
        major_probability=0.65,
        favoured_keys=(4, 9, 2, 7),
        time_signatures=(4,),
        duration_s=(180.0, 290.0),
        popularity=(50.0, 12.0),
    ),
    GenrePrototype(
        name="latin-pop",
        unit_means=_unit_means(0.78, 0.74, 0.08, 0.20, 0.01, 0.12, 0.82),
        concentration=30.0,
        loudness_db=(-4.8, 1.0),
        tempo_bpm=(100.0, 112.0),
        major_probability=0.60,
        favoured_keys=(1, 6, 8, 11),
        time_signatures=(4,),
        duration_s=(170.0, 240.0),
        popularity=(68.0, 10.0),
    ),
    GenrePrototype(
        name="r-and-b",
        unit_means=_unit_means(0.66, 0.45, 0.11, 0.32, 0.02, 0.11, 0.38),
        concentration=30.0,
        loudness_db=(-8.0, 1.5),
        tempo_bpm=(70.0, 84.0),
        major_probability=0.40,
        favoured_keys=(1, 3, 8, 10),
        time_signatures=(4,),
        duration_s=(180.0, 260.0),
        popularity=(58.0, 12.0),
    ),
    GenrePrototype(
        name="metal",
        unit_means=_unit_means(0.32, 0.96, 0.09, 0.01, 0.25, 0.28, 0.22),
        concentration=30.0,
        loudness_db=(-3.8, 0.8),
        tempo_bpm=(156.0, 172.0),
        major_probability=0.20,
        favoured_keys=(4, 2, 7, 11),
        time_signatures=(4,),
        duration_s=(220.0, 360.0),
        popularity=(42.0, 12.0),
    ),
)

# dB of loudness per unit of energy above the group's mean: louder masters sound more energetic.
LOUDNESS_PER_ENERGY_DB = 12.0
FAVOURED_KEY_PROBABILITY = 0.6

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TITLE_WORDS = (
    "Midnight", "Golden", "Paper", "Electric", "Quiet", "Neon", "Silver", "Wild", "Velvet",
    "Broken", "Summer", "Hollow", "Crystal", "Lonely", "Burning", "Distant", "Sweet", "Northern",
)
_TITLE_NOUNS = (
    "River", "Heart", "Lights", "Road", "Fire", "Dreams", "Signal", "Ocean", "Garden", "Echo",
    "Skyline", "Rain", "Shadows", "Home", "Wire", "Letters", "Horizon", "Static",
)
_FIRST_NAMES = (
    "Ava", "Leo", "Mila", "Theo", "Nora", "Kai", "Iris", "Omar", "Lena", "Jonas", "Sol", "Ruby",
    "Dario", "Yuki", "Ines", "Felix",
)
_LAST_NAMES = (
    "Reyes", "Lindqvist", "Okafor", "Marlowe", "Costa", "Hart", "Novak", "Bell", "Moreau",
    "Santos", "Vance", "Kimura", "Adler", "Quinn",
)
_ISRC_COUNTRIES = ("US", "GB", "SE", "DE", "FR", "ES", "BR", "JP")


@dataclass(frozen=True, eq=False)
class DemoCatalog:
    """A generated catalog: Spotify-shaped tracks, their audio features and the ground truth.

    Attributes
    ----------
    tracks : tuple of dict, length n_tracks
        Spotify track objects as found in ``GET /v1/search`` items. ``preview_url`` is the relative
        path ``"previews/<id>.mp3"``; the demo server makes it absolute.
    audio_features : tuple of dict, length n_tracks
        Spotify audio-features objects, in the order of ``tracks``.
    truth : pandas.DataFrame, shape (n_tracks, len(TRUTH_COLUMNS))
        Ground truth per track: ``group``/``group_name`` of its features; ``audio_track_id`` and
        ``audio_group``, the track whose features its preview is rendered from (itself unless
        ``audio_mismatch``); ``tempo``, ``key``, ``mode`` of that preview's audio.
    fingerprint : str
        Hex digest of the generator version and every argument; keys caches of demo data.
    group_names : tuple of str, length n_groups
        Name of each group, indexed by ``truth["group"]``.
    seed, year, audio_mismatch :
        The arguments the catalog was generated with.

    The dicts and the frame are shared, not copied: treat them as read-only.
    """

    tracks: tuple[dict, ...]
    audio_features: tuple[dict, ...]
    truth: pd.DataFrame
    fingerprint: str
    group_names: tuple[str, ...]
    seed: int
    year: int
    audio_mismatch: bool


def generate_catalog(
    n_tracks: int = 1000,
    *,
    n_groups: int = 6,
    year: int = 2020,
    seed: int = 2020,
    audio_mismatch: bool = False,
) -> DemoCatalog:
    """Generate the demo catalog.

    Parameters
    ----------
    n_tracks : int
        Number of tracks, 1 to :data:`MAX_TRACKS`. Groups get sizes as equal as possible. The
        tracks are the first ``n_tracks`` of any larger catalog with the same other arguments.
    n_groups : int
        Number of genre-like groups, 1 to ``len(GENRE_PROTOTYPES)``; the first ``n_groups``
        prototypes are used.
    year : int
        Release year of every album (``release_date`` ``"YYYY-MM-DD"``).
    seed : int
        Seed of every random draw.
    audio_mismatch : bool
        If true, each track's preview is rendered from another, randomly chosen track's features
        (a derangement of all ``n_tracks``, so it depends on the catalog's size): audio and
        features disagree, while tracks and features stay identical to the catalog generated
        with ``audio_mismatch=False``.

    Returns
    -------
    DemoCatalog
    """
    _check_arguments(n_tracks, n_groups=n_groups, year=year, audio_mismatch=audio_mismatch)
    prototypes = GENRE_PROTOTYPES[:n_groups]
    blocks = [
        _draw_block(block, prototypes, year=year, seed=seed)
        for block in range(-(-n_tracks // BLOCK_TRACKS))
    ]
    groups = np.concatenate([block.groups for block in blocks])[:n_tracks]
    feature_columns = {
        name: np.concatenate([block.features[name] for block in blocks])[:n_tracks]
        for name in blocks[0].features
    }
    tracks = [track for block in blocks for track in block.tracks][:n_tracks]
    track_ids = [track["id"] for track in tracks]
    audio_features = tuple(
        _audio_features_object(track, {name: column[i] for name, column in feature_columns.items()})
        for i, track in enumerate(tracks)
    )
    audio_sources = (
        _derangement(n_tracks, np.random.default_rng(seed)) if audio_mismatch else np.arange(n_tracks)
    )
    truth = pd.DataFrame({
        "track_id": track_ids,
        "group": groups.astype(int),
        "group_name": [prototypes[g].name for g in groups],
        "audio_track_id": [track_ids[s] for s in audio_sources],
        "audio_group": groups[audio_sources].astype(int),
        "tempo": [audio_features[s]["tempo"] for s in audio_sources],
        "key": [audio_features[s]["key"] for s in audio_sources],
        "mode": [audio_features[s]["mode"] for s in audio_sources],
    })
    fingerprint = catalog_fingerprint(
        n_tracks, n_groups=n_groups, year=year, seed=seed, audio_mismatch=audio_mismatch
    )
    return DemoCatalog(
        tracks=tuple(tracks),
        audio_features=audio_features,
        truth=truth,
        fingerprint=fingerprint,
        group_names=tuple(p.name for p in prototypes),
        seed=seed,
        year=year,
        audio_mismatch=audio_mismatch,
    )


def catalog_fingerprint(
    n_tracks: int, *, n_groups: int, year: int, seed: int, audio_mismatch: bool
) -> str:
    """Hex digest (16 characters) of the generator version and the catalog's arguments."""
    arguments = {
        "version": GENERATOR_VERSION,
        "n_tracks": n_tracks,
        "n_groups": n_groups,
        "year": year,
        "seed": seed,
        "audio_mismatch": audio_mismatch,
    }
    return hashlib.sha256(json.dumps(arguments, sort_keys=True).encode()).hexdigest()[:16]


def _check_arguments(n_tracks: int, *, n_groups: int, year: int, audio_mismatch: bool) -> None:
    if not 1 <= n_tracks <= MAX_TRACKS:
        raise ValueError(f"n_tracks must be between 1 and {MAX_TRACKS}, got {n_tracks}.")
    if not 1 <= n_groups <= len(GENRE_PROTOTYPES):
        raise ValueError(
            f"n_groups must be between 1 and {len(GENRE_PROTOTYPES)} (the number of genre "
            f"prototypes), got {n_groups}."
        )
    if not 1900 <= year <= 2100:
        raise ValueError(f"year must be between 1900 and 2100, got {year}.")
    if audio_mismatch and n_tracks < 2:
        raise ValueError("audio_mismatch needs at least 2 tracks to swap previews between.")


class _Block(NamedTuple):
    """One block of :data:`BLOCK_TRACKS` tracks: groups, feature columns, track objects."""

    groups: np.ndarray
    features: dict[str, np.ndarray]
    tracks: list[dict]


def _draw_block(block: int, prototypes: tuple[GenrePrototype, ...], *, year: int, seed: int) -> _Block:
    """Tracks ``block * BLOCK_TRACKS`` up to the next block.

    Every block draws from its own stream (``seed``, ``block``), so it does not depend on how
    many blocks the catalog holds.
    """
    rng = np.random.default_rng([seed, block])
    n_groups = len(prototypes)
    # Each run of n_groups tracks holds every group once, in random order (search results are
    # not sorted by genre), so the groups of any prefix differ in size by one at most.
    n_runs = -(-BLOCK_TRACKS // n_groups)
    groups = rng.random((n_runs, n_groups)).argsort(axis=1).ravel()[:BLOCK_TRACKS]
    features = _draw_features(groups, prototypes, rng)
    tracks = _draw_tracks(
        groups, prototypes, features["duration_ms"], rng, year=year, seed=seed, block=block
    )
    return _Block(groups, features, tracks)


def _draw_features(
    groups: np.ndarray, prototypes: tuple[GenrePrototype, ...], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draw every audio feature column for tracks of the given groups.

    Parameters
    ----------
    groups : ndarray of int, shape (n_tracks,)
    prototypes : tuple of GenrePrototype
    rng : numpy.random.Generator

    Returns
    -------
    dict of str to ndarray of shape (n_tracks,)
        One column per name in ``SPOTIFY_FEATURE_COLUMNS`` plus ``time_signature`` and
        ``duration_ms``.
    """
    n_tracks = len(groups)
    columns: dict[str, np.ndarray] = {}
    for name in UNIT_FEATURES:
        means = np.array([p.unit_means[name] for p in prototypes])[groups]
        concentration = np.array([p.concentration for p in prototypes])[groups]
        columns[name] = rng.beta(means * concentration, (1.0 - means) * concentration)

    energy_means = np.array([p.unit_means["energy"] for p in prototypes])[groups]
    loudness_means, loudness_sds = np.array([p.loudness_db for p in prototypes])[groups].T
    columns["loudness"] = np.clip(
        loudness_means
        + LOUDNESS_PER_ENERGY_DB * (columns["energy"] - energy_means)
        + rng.normal(0.0, 1.0, n_tracks) * loudness_sds,
        -60.0,
        -0.5,
    )
    tempo_low, tempo_high = np.array([p.tempo_bpm for p in prototypes])[groups].T
    columns["tempo"] = rng.uniform(tempo_low, tempo_high)
    columns["mode"] = (
        rng.random(n_tracks) < np.array([p.major_probability for p in prototypes])[groups]
    ).astype(int)
    columns["key"] = np.array([_draw_key(prototypes[g], rng) for g in groups])
    columns["time_signature"] = np.array(
        [rng.choice(prototypes[g].time_signatures) for g in groups]
    )
    duration_low, duration_high = np.array([p.duration_s for p in prototypes])[groups].T
    columns["duration_ms"] = np.round(rng.uniform(duration_low, duration_high) * 1000).astype(int)
    return columns


def _draw_key(prototype: GenrePrototype, rng: np.random.Generator) -> int:
    if rng.random() < FAVOURED_KEY_PROBABILITY:
        return int(rng.choice(prototype.favoured_keys))
    return int(rng.integers(0, 12))


def _draw_tracks(
    groups: np.ndarray,
    prototypes: tuple[GenrePrototype, ...],
    durations_ms: np.ndarray,
    rng: np.random.Generator,
    *,
    year: int,
    seed: int,
    block: int,
) -> list[dict]:
    """Draw Spotify track objects (artists, albums, names, ids, ISRCs) for one block's groups.

    ``groups`` and ``durations_ms`` have shape (n_tracks,); the first track is number
    ``block * n_tracks`` of the catalog. Artists belong to one group and block and release one
    album each in ``year``; about five tracks per artist. Ids are hashes of (seed, year, kind,
    index), so they are unique and stable.
    """
    n_tracks = len(groups)
    n_groups = len(prototypes)
    n_artists_per_group = max(1, n_tracks // (5 * n_groups))
    artist_of_track = groups * n_artists_per_group + rng.integers(0, n_artists_per_group, n_tracks)
    n_artists = n_groups * n_artists_per_group
    first_track, first_artist = block * n_tracks, block * n_artists
    artists = [
        _simplified_object("artist", _base62_id(seed, year, "artist", first_artist + a), _artist_name(rng))
        for a in range(n_artists)
    ]
    tracks_per_artist = np.bincount(artist_of_track, minlength=n_artists)
    albums = [
        _album_object(
            album_id=_base62_id(seed, year, "album", first_artist + a),
            name=_title(rng),
            artist=artists[a],
            release_date=_release_date(year, rng),
            album_type="album" if tracks_per_artist[a] >= 3 else "single",
        )
        for a in range(n_artists)
    ]
    tracks = []
    next_track_number = np.ones(n_artists, dtype=int)
    for index, (group, artist) in enumerate(zip(groups, artist_of_track)):
        prototype = prototypes[group]
        track_artists = [artists[artist]]
        if prototype.name in ("hip-hop", "latin-pop", "r-and-b") and rng.random() < 0.3:
            featured = group * n_artists_per_group + rng.integers(0, n_artists_per_group)
            if featured != artist:
                track_artists.append(artists[featured])
        track_id = _base62_id(seed, year, "track", first_track + index)
        popularity = rng.normal(*prototype.popularity)
        tracks.append({
            "album": albums[artist],
            "artists": track_artists,
            "disc_number": 1,
            "duration_ms": int(durations_ms[index]),
            "explicit": bool(prototype.name == "hip-hop" and rng.random() < 0.6),
            "external_ids": {"isrc": _isrc(first_track + index, group, year)},
            "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
            "href": f"{SPOTIFY_API_URL}/tracks/{track_id}",
            "id": track_id,
            "is_local": False,
            "name": _title(rng),
            "popularity": int(np.clip(round(popularity), 0, 100)),
            "preview_url": f"previews/{track_id}.mp3",
            "track_number": int(next_track_number[artist]),
            "type": "track",
            "uri": f"spotify:track:{track_id}",
        })
        next_track_number[artist] += 1
    return tracks


def _audio_features_object(track: dict, features: Mapping[str, float]) -> dict:
    """Spotify's audio-features object for ``track``, rounded as Spotify reports values."""
    track_id = track["id"]
    return {
        "danceability": _round(features["danceability"], decimals=3),
        "energy": _round(features["energy"], decimals=3),
        "key": int(features["key"]),
        "loudness": _round(features["loudness"], decimals=3),
        "mode": int(features["mode"]),
        "speechiness": _round_significant(features["speechiness"]),
        "acousticness": _round_significant(features["acousticness"]),
        "instrumentalness": _round_significant(features["instrumentalness"]),
        "liveness": _round_significant(features["liveness"]),
        "valence": _round(features["valence"], decimals=3),
        "tempo": _round(features["tempo"], decimals=3),
        "type": "audio_features",
        "id": track_id,
        "uri": f"spotify:track:{track_id}",
        "track_href": f"{SPOTIFY_API_URL}/tracks/{track_id}",
        "analysis_url": f"{SPOTIFY_API_URL}/audio-analysis/{track_id}",
        "duration_ms": track["duration_ms"],
        "time_signature": int(features["time_signature"]),
    }


def _round(value: float, *, decimals: int) -> float:
    return float(round(float(value), decimals))


def _round_significant(value: float) -> float:
    """Round to three significant digits (Spotify reports tiny values like 1.2e-05 this way)."""
    return float(f"{float(value):.3g}")


def _derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of ``range(n)`` with no fixed point (n >= 2)."""
    permutation = rng.permutation(n)
    for i in range(n):
        # Swapping a fixed point with any other position never creates a new fixed point. The
        # test is on the current state: an earlier swap may already have moved position i.
        if permutation[i] == i:
            j = (i + 1) % n
            permutation[i], permutation[j] = permutation[j], permutation[i]
    return permutation


def _base62_id(seed: int, year: int, kind: str, index: int) -> str:
    """A 22-character base62 id, like Spotify's, hashed from its arguments."""
    digest = hashlib.blake2b(f"{seed}:{year}:{kind}:{index}".encode(), digest_size=17).digest()
    number = int.from_bytes(digest, "big")
    characters = []
    for _ in range(22):
        number, remainder = divmod(number, 62)
        characters.append(_BASE62[remainder])
    return "".join(characters)


def _isrc(index: int, group: int, year: int) -> str:
    """A 12-character ISRC: country, registrant, two-digit year, five-digit designation.

    The designation is the track index, so ISRCs are unique within a catalog.
    """
    country = _ISRC_COUNTRIES[group % len(_ISRC_COUNTRIES)]
    registrant = f"SM{_BASE62[10 + group]}"
    return f"{country}{registrant}{year % 100:02d}{index + 1:05d}"


def _simplified_object(kind: str, object_id: str, name: str) -> dict:
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{object_id}"},
        "href": f"{SPOTIFY_API_URL}/{kind}s/{object_id}",
        "id": object_id,
        "name": name,
        "type": kind,
        "uri": f"spotify:{kind}:{object_id}",
    }


def _album_object(
    *, album_id: str, name: str, artist: dict, release_date: str, album_type: str
) -> dict:
    return {
        **_simplified_object("album", album_id, name),
        "album_type": album_type,
        "artists": [artist],
        "release_date": release_date,
        "release_date_precision": "day",
    }


def _release_date(year: int, rng: np.random.Generator) -> str:
    days_in_year = (datetime.date(year + 1, 1, 1) - datetime.date(year, 1, 1)).days
    day = datetime.date(year, 1, 1) + datetime.timedelta(days=int(rng.integers(0, days_in_year)))
    return day.isoformat()


def _title(rng: np.random.Generator) -> str:
    return f"{rng.choice(_TITLE_WORDS)} {rng.choice(_TITLE_NOUNS)}"


def _artist_name(rng: np.random.Generator) -> str:
    if rng.random() < 0.3:
        return f"The {rng.choice(_TITLE_WORDS)} {rng.choice(_TITLE_NOUNS)}"
    return f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
