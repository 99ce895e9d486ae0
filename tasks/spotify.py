"""Tasks that ask a Spotify-compatible API for tracks and their audio features.

Clients are built inside the task from endpoints and credentials resolved there, so no
client (unhashable, different in every process) and no secret ever becomes a task input.
Cache keys leave the endpoints out (the demo's port changes every run) and use the source's
``cache_key`` instead.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

import spotipy
from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

from songmix.sources.demo_server import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from songmix.sources.credentials import SpotifyCredentials, load_spotify_credentials
from songmix.sources.fallbacks import RECCOBEATS_BATCH, FallbackEndpoints, fetch_reccobeats_features
from songmix.sources.http import RETRIES, make_session, retry_condition
from songmix.sources.spotify import (
    AudioFeaturesForbidden,
    SpotifyEndpoints,
    fetch_audio_features,
    fetch_playlist_tracks,
    fetch_search_page,
    make_spotify_client,
)

#: Retries for every network task, only on what is retryable (429, 5xx, timeouts); a 400 or
#: 404 fails at once. The retry condition waits (a 429's Retry-After, else a jittered
#: exponential backoff), so Prefect adds no delay of its own.
NETWORK_RETRIES = dict(
    retries=RETRIES,
    retry_delay_seconds=0,
    retry_condition_fn=retry_condition,
)


_CLIENT_LOCK = threading.Lock()


def _client(endpoints: SpotifyEndpoints, credentials: str) -> spotipy.Spotify:
    """One client per process and endpoints, shared by the task threads."""
    # Without the lock, the first tasks (4 threads) would each build a client and ask for a
    # token of their own.
    with _CLIENT_LOCK:
        return _authorized_client(endpoints, credentials)


@functools.lru_cache(maxsize=4)
def _authorized_client(endpoints: SpotifyEndpoints, credentials: str) -> spotipy.Spotify:
    """A client holding its token. ``credentials`` says whose: ``"demo"`` (the demo
    service's fixed client) or ``"spotify"``, resolved here, never passed."""
    resolved = (SpotifyCredentials(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET) if credentials == "demo"
                else load_spotify_credentials())
    client = make_spotify_client(endpoints, resolved)
    client.auth_manager.get_access_token(as_dict=False)
    return client



@task(
    name="fetch-search-pages",
    task_run_name="fetch-search-pages[chunk {chunk}]",
    # Search results change week to week, so pages are never reused across runs; an
    # interrupted run resumes from the pages the warehouse already holds.
    cache_policy=NO_CACHE,
    **NETWORK_RETRIES,
)
def fetch_search_pages(
    endpoints: SpotifyEndpoints, credentials: str, query: str, offsets: list[int], chunk: str
) -> list[dict]:
    """Fetch search pages of 10 tracks at ``offsets``; returns raw pages with their offset
    (``query, offset, page``; the flow stamps when they arrived)."""
    client = _client(endpoints, credentials)
    return [
        {"query": query, "offset": offset, "page": fetch_search_page(client, query, offset=offset)}
        for offset in offsets
    ]


@task(
    name="fetch-playlist",
    task_run_name="fetch-playlist[{playlist_id}]",
    # Playlists change; like search pages, an interrupted run resumes from the warehouse.
    cache_policy=NO_CACHE,
    **NETWORK_RETRIES,
)
def fetch_playlist(endpoints: SpotifyEndpoints, credentials: str, playlist_id: str) -> list[dict]:
    """Every track of a playlist, as one raw page shaped like a search page.

    Returns ``[{"query": "playlist:<id>", "offset": 0, "page": {"tracks":
    {"items": [...]}}}]``, the shape of :func:`fetch_search_pages`, so playlists and
    searches are stored, reused and parsed alike.
    """
    tracks = fetch_playlist_tracks(_client(endpoints, credentials), playlist_id)
    return [{"query": f"playlist:{playlist_id}", "offset": 0,
             "page": {"tracks": {"items": tracks, "next": None, "total": len(tracks)}}}]


@dataclass(frozen=True)
class FeatureBatch:
    """Audio features for a batch of tracks, as the provider answered."""

    provider: str
    features: dict[str, dict] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


@task(
    name="fetch-audio-features",
    task_run_name="fetch-audio-features[chunk {chunk}]",
    cache_policy=(INPUTS - "endpoints" - "chunk") + TASK_SOURCE,
    **NETWORK_RETRIES,
)
def fetch_audio_features_batch(
    endpoints: SpotifyEndpoints,
    credentials: str,
    source_key: str,
    track_ids: list[str],
    chunk: str,
) -> FeatureBatch:
    """Audio features of up to 100 tracks; ids no provider knows are ``missing``.

    Spotify answers 403 to apps created after 2024-11-27; then the keyless ReccoBeats
    endpoint is asked instead, 40 ids a request. ``source_key`` only keys the cache.
    """
    client = _client(endpoints, credentials)
    provider = credentials  # whose API answered: "demo" or "spotify" (SpotifyApi.credentials)
    try:
        answered = dict(zip(track_ids, fetch_audio_features(client, track_ids)))
    except AudioFeaturesForbidden:
        provider = "reccobeats"
        answered = _reccobeats_features(track_ids)
    features = {tid: obj for tid, obj in answered.items() if obj is not None}
    reason = ("spotify refused audio-features (403) and reccobeats does not know the track"
              if provider == "reccobeats" else f"{provider} has no audio features for the track")
    missing = {tid: reason for tid in track_ids if tid not in features}
    return FeatureBatch(provider=provider, features=features, missing=missing)


def _reccobeats_features(track_ids: list[str]) -> dict[str, dict]:
    base_url = FallbackEndpoints.from_env().reccobeats_url
    session = make_session(timeout=15, trusted_urls=(base_url,))
    found: dict[str, dict] = {}
    for start in range(0, len(track_ids), RECCOBEATS_BATCH):
        found |= fetch_reccobeats_features(session, base_url, track_ids[start:start + RECCOBEATS_BATCH])
    return found
