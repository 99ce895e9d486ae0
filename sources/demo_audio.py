"""Render 30-second demo previews from Spotify audio features, and cache them as MP3.

The audio carries the features' signal so that features extracted from it (Aubio) can be checked
against the catalog's ground truth:

- ``tempo`` sets the beat grid: a kick on every beat, a backbeat, bass notes on the beats;
- ``key`` and ``mode`` set the harmony: a tonic-heavy chord progression (harmonic-minor dominant in
  minor), bass roots and a melody drawn from the scale;
- ``loudness`` sets the level (RMS in dBFS, then a soft limiter), ``energy`` the density (hi-hats,
  chord re-strikes, melody rate) and the drums' weight;
- ``acousticness`` sets the timbre: plucked, quickly darkening strings and soft drums when high,
  bright sustained saw chords and noisy drums when low;
- ``speechiness`` adds formant-filtered noise syllables on the sixteenth-note grid;
- ``instrumentalness`` below 1 adds a sung, vowel-like melody (vibrato, formants);
- ``liveness`` adds reverb and crowd noise; ``danceability`` sets beat strength and steadiness;
- ``valence`` brightens the timbre and lifts the melody's register.

Everything is vectorised numpy: distinct notes are synthesised once per clip and added at each
onset; MP3 encoding is the slow part, hence the cache (benchmarks/pipeline.py times the cold render).
Output is mono float32 in [-1, 1]. Same features and seed give the same samples on one machine
(float32 sin/exp may differ in the last bit across CPUs).

Anything changed here that changes the sound must bump ``demo_catalog.GENERATOR_VERSION``: the
catalog's fingerprint names the cache folder, so stale previews are then never reused.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import lameenc
import numpy as np
from scipy import signal

from songmix.sources.demo_catalog import DemoCatalog
from songmix.sources.schema import SPOTIFY_FEATURE_COLUMNS

SAMPLE_RATE = 22050
PREVIEW_SECONDS = 30.0
# MP3 through LAME (lameenc), not libsndfile's MP3 writer, which is several times slower
# whatever its compression level (benchmarks/pipeline.py times the cold render).
MP3_BITRATE_KBPS = 48
MP3_LAME_QUALITY = 7
MAX_CHUNK_SIZE = 25

MAJOR_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])
NATURAL_MINOR_SCALE = np.array([0, 2, 3, 5, 7, 8, 10])
HARMONIC_MINOR_SCALE = np.array([0, 2, 3, 5, 7, 8, 11])
# Progressions as scale degrees, one chord per bar. The tonic holds half the bars so that a
# chroma-based key finder sees it; minor keys use the harmonic-minor dominant (raised leading
# tone), which tells them apart from their relative major.
PROGRESSIONS = ((0, 3, 0, 4), (0, 0, 3, 4), (0, 4, 0, 3))
VOWEL_FORMANTS_HZ = ((730.0, 1090.0), (530.0, 1840.0), (300.0, 870.0), (660.0, 1720.0))
MAX_BEAT_JITTER_S = 0.006
BASS_LOWEST_NOTE = 40  # E2


def render_preview(
    audio_features: Mapping[str, float],
    *,
    seed: int,
    duration_s: float = PREVIEW_SECONDS,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Render a preview clip whose sound follows ``audio_features``.

    Parameters
    ----------
    audio_features : Mapping
        A Spotify audio-features object (at least the eleven ``SPOTIFY_FEATURE_COLUMNS``;
        ``time_signature`` defaults to 4).
    seed : int
        Seed of every random choice (melody, jitter, noise): same seed, same samples.
    duration_s : float
        Clip length in seconds.
    sample_rate : int
        Samples per second.

    Returns
    -------
    ndarray of float32, shape (round(duration_s * sample_rate),)
        Mono samples in [-1, 1].
    """
    features = _checked_features(audio_features)
    if duration_s <= 0 or sample_rate < 8000:
        raise ValueError(
            f"duration_s must be positive and sample_rate at least 8000 Hz; got {duration_s} s "
            f"at {sample_rate} Hz."
        )
    rng = np.random.default_rng(seed)
    n_samples = int(round(duration_s * sample_rate))
    grid = _beat_grid(features, n_samples=n_samples, sample_rate=sample_rate, rng=rng)
    chords = _chord_per_beat(features, grid=grid, rng=rng)

    song = _Song(features, grid, chords, n_samples, sample_rate)
    mix = np.zeros(n_samples, dtype=np.float32)
    mix += _drums(song, rng)
    mix += _bass(song)
    mix += _harmony(song)
    mix += _melody(song, rng)
    mix += _speech(song, rng)
    mix = _live_room(features, mix, sample_rate=sample_rate, rng=rng)
    return _master(mix, loudness_db=features["loudness"])


def render_catalog_audio(
    catalog: DemoCatalog,
    cache_dir: Path,
    *,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Path]:
    """Render every track's preview once into ``<cache_dir>/<catalog.fingerprint>/<id>.mp3``.

    Files already present are kept (the fingerprint covers everything that shapes them); missing
    ones are rendered in chunks by ``workers`` processes and written atomically (temporary file,
    then ``os.replace``), so an interrupted run never leaves a truncated MP3 behind. The file of
    track A is rendered from the features of ``catalog.truth``'s ``audio_track_id`` of A, which is
    another track when the catalog has ``audio_mismatch``.

    Parameters
    ----------
    catalog : DemoCatalog
    cache_dir : Path
        Root of the render cache; created if missing.
    workers : int
        Processes rendering at once; 1 renders in this process. More start "spawn" processes,
        which import the main module again: call from under ``if __name__ == "__main__":``.
    progress : callable(done, total), optional
        Called once with the count already cached, then after each rendered chunk.

    Returns
    -------
    dict of str to Path
        Track id to its preview file, for every track of the catalog.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}.")
    target_dir = Path(cache_dir) / catalog.fingerprint
    target_dir.mkdir(parents=True, exist_ok=True)
    features_by_id = {features["id"]: features for features in catalog.audio_features}
    paths = {track_id: target_dir / f"{track_id}.mp3" for track_id in catalog.truth["track_id"]}
    jobs = [
        (dict(features_by_id[source_id]), render_seed(catalog.seed, source_id), paths[track_id])
        for track_id, source_id in zip(catalog.truth["track_id"], catalog.truth["audio_track_id"])
        if not paths[track_id].exists()
    ]
    done, total = len(paths) - len(jobs), len(paths)
    if progress is not None:
        progress(done, total)
    for rendered in _run_chunks(jobs, workers=workers):
        done += rendered
        if progress is not None:
            progress(done, total)
    return paths


def render_seed(catalog_seed: int, track_id: str) -> int:
    """Seed of the preview rendered from ``track_id``'s features, stable across catalog sizes."""
    digest = hashlib.blake2b(f"{catalog_seed}:{track_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def write_mp3(samples: np.ndarray, path: Path, *, sample_rate: int = SAMPLE_RATE) -> None:
    """Encode ``samples`` (float, shape (n_samples,)) as MP3 at ``path``, atomically."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(MP3_BITRATE_KBPS)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_channels(1)
    encoder.set_quality(MP3_LAME_QUALITY)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(encoder.encode(pcm) + encoder.flush())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _run_chunks(jobs: list[tuple[dict, int, Path]], *, workers: int):
    """Render and write ``jobs`` in chunks; yield the size of each chunk as it finishes."""
    if not jobs:
        return
    chunk_size = max(1, min(MAX_CHUNK_SIZE, -(-len(jobs) // (4 * workers))))
    chunks = [jobs[i:i + chunk_size] for i in range(0, len(jobs), chunk_size)]
    if workers == 1:
        for chunk in chunks:
            yield _render_chunk(chunk)
        return
    # spawn, not fork: the caller may hold threads (Prefect, the demo server) that fork would copy
    # in whatever state they are in.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_render_chunk, chunk) for chunk in chunks]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def _render_chunk(chunk: list[tuple[dict, int, Path]]) -> int:
    for features, seed, path in chunk:
        write_mp3(render_preview(features, seed=seed), path)
    return len(chunk)


def _checked_features(audio_features: Mapping[str, float]) -> dict[str, float]:
    missing = [name for name in SPOTIFY_FEATURE_COLUMNS if audio_features.get(name) is None]
    if missing:
        raise ValueError(
            f"audio features lack {missing}; pass a full Spotify audio-features object."
        )
    features = {name: float(audio_features[name]) for name in SPOTIFY_FEATURE_COLUMNS}
    features["time_signature"] = float(audio_features.get("time_signature") or 4)
    if not 30.0 <= features["tempo"] <= 300.0:
        raise ValueError(
            f"tempo must be between 30 and 300 BPM to render, got {features['tempo']}."
        )
    if features["key"] not in range(12) or features["mode"] not in (0, 1):
        raise ValueError(
            f"key must be a pitch class 0-11 and mode 0 or 1 to render, got key "
            f"{features['key']} and mode {features['mode']} (Spotify's key -1 means unknown)."
        )
    return features


# ---------------------------------------------------------------------------------------------
# Arrangement: when things happen


@dataclass(frozen=True)
class _BeatGrid:
    """Where the beats fall.

    Attributes
    ----------
    beats : ndarray of int, shape (n_beats,)
        Onset of each beat, in samples.
    beat_samples : float
        Nominal beat period, in samples.
    beats_per_bar : int
    beat_in_bar : ndarray of int, shape (n_beats,)
        Position of each beat in its bar, 0 = downbeat.
    """

    beats: np.ndarray
    beat_samples: float
    beats_per_bar: int
    beat_in_bar: np.ndarray


@dataclass(frozen=True)
class _Song:
    """What every layer plays to: the features, the beats, the chord of each beat
    (MIDI notes, shape (n_beats, 3)), the clip's length and rate."""

    features: Mapping[str, float]
    grid: _BeatGrid
    chords: np.ndarray
    n_samples: int
    sample_rate: int


def _beat_grid(
    features: Mapping[str, float], *, n_samples: int, sample_rate: int, rng: np.random.Generator
) -> _BeatGrid:
    """Beat onsets with a late-only jitter that grows as danceability falls (at most ~6 ms)."""
    beat_samples = 60.0 / features["tempo"] * sample_rate
    n_beats = int(np.ceil(n_samples / beat_samples))
    jitter = rng.normal(0.0, MAX_BEAT_JITTER_S * (1.0 - features["danceability"]), n_beats)
    beats = np.round(np.arange(n_beats) * beat_samples + np.abs(jitter) * sample_rate).astype(int)
    beats_per_bar = int(np.clip(features["time_signature"], 3, 7))
    return _BeatGrid(
        beats=beats,
        beat_samples=beat_samples,
        beats_per_bar=beats_per_bar,
        beat_in_bar=np.arange(n_beats) % beats_per_bar,
    )


def _chord_per_beat(
    features: Mapping[str, float], *, grid: _BeatGrid, rng: np.random.Generator
) -> np.ndarray:
    """MIDI notes of the triad sounding at each beat, shape (n_beats, 3), root in octave 3."""
    tonic = 48 + int(features["key"])
    major = features["mode"] >= 0.5
    scale = MAJOR_SCALE if major else NATURAL_MINOR_SCALE
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    triads = []
    for degree in progression:
        steps = degree + np.array([0, 2, 4])
        triad = tonic + scale[steps % 7] + 12 * (steps // 7)
        if not major and degree == 4:
            triad[1] += 1  # harmonic minor: the dominant's third is the raised leading tone
        triads.append(triad)
    bar_of_beat = np.arange(len(grid.beats)) // grid.beats_per_bar
    return np.array(triads)[bar_of_beat % len(progression)]


def _scale_notes(features: Mapping[str, float], *, low: int, high: int) -> np.ndarray:
    """MIDI notes of the key's scale in [low, high), harmonic minor in minor keys."""
    scale = MAJOR_SCALE if features["mode"] >= 0.5 else HARMONIC_MINOR_SCALE
    pitch_classes = (int(features["key"]) + scale) % 12
    notes = np.arange(low, high)
    return notes[np.isin(notes % 12, pitch_classes)]


# ---------------------------------------------------------------------------------------------
# Layers: what sounds


def _drums(song: _Song, rng: np.random.Generator) -> np.ndarray:
    """Kick on every beat (accented downbeat), backbeat snare, hi-hats by energy."""
    features, grid, n_samples, sample_rate = song.features, song.grid, song.n_samples, song.sample_rate
    energy, acoustic, dance = features["energy"], features["acousticness"], features["danceability"]
    beats, beat_in_bar = grid.beats, grid.beat_in_bar
    out = np.zeros(n_samples, dtype=np.float32)
    kick = _kick(sample_rate=sample_rate, softness=acoustic, tonic=int(features["key"]))
    kick_gains = (0.55 + 0.45 * dance) * np.where(beat_in_bar == 0, 1.0, 0.8)
    _add_at(out, kick, beats, kick_gains)

    backbeat = beats[beat_in_bar % 2 == 1]
    snare = _noise_hit(rng, sample_rate=sample_rate, decay_s=0.06 + 0.1 * acoustic,
                       band_hz=(180.0, 5000.0 - 3500.0 * acoustic))
    _add_at(out, snare, backbeat, np.full(len(backbeat), 0.12 + 0.3 * energy))

    subdivisions = 4 if energy > 0.75 else 2 if energy > 0.4 else 0
    if subdivisions:
        hat_times = _subdivide(beats, grid.beat_samples, subdivisions)
        off_beat = np.arange(len(hat_times)) % subdivisions != 0
        hat = _noise_hit(rng, sample_rate=sample_rate, decay_s=0.02, band_hz=(6000.0, 10000.0))
        hat_gain = 0.1 * energy * (1.0 - 0.7 * acoustic)
        _add_at(out, hat, hat_times[off_beat], np.full(off_beat.sum(), hat_gain))
    return out


def _bass(song: _Song) -> np.ndarray:
    """Chord roots in E2-D#3 (82-156 Hz), struck on every beat.

    Kept above ~80 Hz, where spectral frames of usual sizes still resolve semitones, so the bass
    helps a chroma key finder instead of smearing across pitch classes.
    """
    features, grid, chords = song.features, song.grid, song.chords
    n_samples, sample_rate = song.n_samples, song.sample_rate
    out = np.zeros(n_samples, dtype=np.float32)
    length = int(grid.beat_samples)
    roots = BASS_LOWEST_NOTE + (chords[:, 0] - BASS_LOWEST_NOTE) % 12
    harmonic_amplitudes = np.array([1.0, 0.5 * (1.0 - features["acousticness"]) + 0.3, 0.2])
    for root in np.unique(roots):
        tone = _tone(root, length, sample_rate=sample_rate, amplitudes=harmonic_amplitudes,
                     decay_s=0.25 + 0.3 * features["acousticness"])
        at = roots == root
        _add_at(out, tone, grid.beats[at], np.full(at.sum(), 0.25))
    return out


def _harmony(song: _Song) -> np.ndarray:
    """The chords: plucked strums (acoustic) or bright saw stabs/pads (electronic).

    Chords are struck on every beat when energetic, every two beats otherwise, on the downbeat
    always.
    """
    features, grid, chords = song.features, song.grid, song.chords
    n_samples, sample_rate = song.n_samples, song.sample_rate
    acoustic, energy = features["acousticness"], features["energy"]
    strike_every = 1 if energy > 0.5 else 2
    struck = np.flatnonzero(grid.beat_in_bar % strike_every == 0)
    length = int(grid.beat_samples * strike_every)
    amplitudes = _timbre(features, n_harmonics=12)
    decay_s = 0.15 + 0.6 * acoustic if acoustic > 0.5 else 2.0
    strum_samples = int(0.012 * acoustic * sample_rate)  # strings are strummed, synths struck
    out = np.zeros(n_samples, dtype=np.float32)
    for string, notes in enumerate(chords[struck].T):
        for note in np.unique(notes):
            tone = _tone(note, length, sample_rate=sample_rate, amplitudes=amplitudes,
                         decay_s=decay_s)
            at = struck[notes == note]
            _add_at(out, tone, grid.beats[at] + string * strum_samples,
                    np.full(len(at), 0.12 + 0.06 * energy))
    return out


def _melody(song: _Song, rng: np.random.Generator) -> np.ndarray:
    """A scale melody: chord tones on beats, stepwise in between; sung when not instrumental.

    Energetic tracks move in eighth notes, calm ones in quarter notes. Higher valence lifts the
    register by up to an octave.
    """
    features, grid, chords = song.features, song.grid, song.chords
    n_samples, sample_rate = song.n_samples, song.sample_rate
    per_beat = 2 if features["energy"] > 0.6 else 1
    onsets = _subdivide(grid.beats, grid.beat_samples, per_beat)
    low = 60 + int(round(12 * features["valence"]))
    notes_available = _scale_notes(features, low=low, high=low + 14)
    notes = np.empty(len(onsets), dtype=int)
    position = len(notes_available) // 2
    for i in range(len(onsets)):
        if i % per_beat == 0:  # on the beat: the nearest tone of the sounding chord
            chord_pitch_classes = chords[i // per_beat] % 12
            candidates = np.flatnonzero(np.isin(notes_available % 12, chord_pitch_classes))
            position = candidates[np.argmin(np.abs(candidates - position))]
        else:
            position = int(np.clip(position + rng.choice((-1, 1)), 0, len(notes_available) - 1))
        notes[i] = notes_available[position]

    sung = 1.0 - features["instrumentalness"]
    length = int(grid.beat_samples / per_beat)
    out = np.zeros(n_samples, dtype=np.float32)
    for note in np.unique(notes):
        at = onsets[notes == note]
        if sung > 0.05:
            voice = _voice(note, length, sample_rate=sample_rate, rng=rng)
            _add_at(out, voice, at, np.full(len(at), 0.16 * sung))
        if sung < 0.95:
            lead = _tone(note, length, sample_rate=sample_rate,
                         amplitudes=_timbre(features, n_harmonics=8), decay_s=0.4)
            _add_at(out, lead, at, np.full(len(at), 0.09 * (1.0 - sung)))
    return out


def _speech(song: _Song, rng: np.random.Generator) -> np.ndarray:
    """Formant-filtered noise syllables on the sixteenth-note grid, as many as speechiness says."""
    features, grid, n_samples, sample_rate = song.features, song.grid, song.n_samples, song.sample_rate
    out = np.zeros(n_samples, dtype=np.float32)
    amount = np.clip((features["speechiness"] - 0.05) / 0.4, 0.0, 1.0)
    if amount == 0.0:
        return out
    slots = _subdivide(grid.beats, grid.beat_samples, 4)
    spoken = slots[rng.random(len(slots)) < 0.2 + 0.6 * amount]
    vowel_of_syllable = rng.integers(len(VOWEL_FORMANTS_HZ), size=len(spoken))
    length = int(0.12 * sample_rate)
    envelope = np.hanning(length).astype(np.float32)
    for vowel, formants in enumerate(VOWEL_FORMANTS_HZ):
        syllable = _formant_filter(rng.standard_normal(length, dtype=np.float32), formants,
                                   sample_rate=sample_rate)
        at = spoken[vowel_of_syllable == vowel]
        _add_at(out, syllable * envelope, at, np.full(len(at), 0.5 * amount))
    return out


def _live_room(
    features: Mapping[str, float], mix: np.ndarray, *, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Add reverb (wet share = liveness) and, for live-sounding tracks, crowd noise."""
    liveness = features["liveness"]
    decay_s = 0.2 + 0.6 * liveness
    t = _times(int(decay_s * 2.5 * sample_rate), sample_rate)
    impulse = rng.standard_normal(len(t), dtype=np.float32) * np.exp(-t / decay_s)
    impulse /= np.sqrt(np.sum(impulse**2))
    wet = signal.fftconvolve(mix, impulse)[: len(mix)]
    out = (1.0 - 0.6 * liveness) * mix + 0.6 * liveness * wet
    crowd_level = max(0.0, liveness - 0.25)
    if crowd_level:
        b, a = signal.butter(2, [300.0, 3000.0], btype="bandpass", fs=sample_rate)
        crowd = signal.lfilter(b, a, rng.standard_normal(len(mix), dtype=np.float32))
        swell = 1.0 + 0.5 * np.sin(2 * np.pi * 0.1 * _times(len(mix), sample_rate))
        out += crowd_level * 0.15 * swell * crowd / np.std(crowd)
    return out


def _master(mix: np.ndarray, *, loudness_db: float) -> np.ndarray:
    """Scale to an RMS of ``loudness_db`` dBFS, then soft-limit (loud masters saturate)."""
    rms = np.sqrt(np.mean(mix**2))
    if rms == 0.0:
        return mix.astype(np.float32)
    scaled = mix * (10.0 ** (loudness_db / 20.0) / rms)
    return np.tanh(scaled).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Sounds: one note or hit, synthesised once per clip


def _tone(
    midi_note: int,
    n_samples: int,
    *,
    sample_rate: int,
    amplitudes: np.ndarray,
    decay_s: float,
) -> np.ndarray:
    """A harmonic tone; higher harmonics die faster, as in plucked strings.

    Parameters
    ----------
    amplitudes : ndarray of shape (n_harmonics,)
        Amplitude of each harmonic; harmonics above Nyquist are dropped.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    frequency = _frequency(midi_note)
    harmonics = np.arange(1, len(amplitudes) + 1, dtype=np.float32)
    # Drop partials above Nyquist, and those 40 dB down (dark acoustic timbres), to save work.
    audible = (harmonics * frequency < 0.45 * sample_rate) & (amplitudes >= 0.01 * amplitudes[0])
    harmonics, amplitudes = harmonics[audible], amplitudes[audible].astype(np.float32)
    t = _times(n_samples, sample_rate)
    decays = np.exp(-np.outer(harmonics, t) / decay_s)
    partials = np.sin(2 * np.pi * frequency * np.outer(harmonics, t))
    attack = np.minimum(1.0, t / 0.005)
    release = np.minimum(1.0, (t[-1] - t) / 0.01 + 1e-3)
    return attack * release * (amplitudes @ (partials * decays))


def _voice(
    midi_note: int, n_samples: int, *, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """A sung vowel: harmonics shaped by two formants, with vibrato and a soft attack."""
    frequency = _frequency(midi_note)
    formants = VOWEL_FORMANTS_HZ[rng.integers(len(VOWEL_FORMANTS_HZ))]
    harmonics = np.arange(1, int(0.45 * sample_rate / frequency) + 1, dtype=np.float32)
    amplitudes = sum(np.exp(-(((harmonics * frequency) - f) / 150.0) ** 2) for f in formants)
    amplitudes = (amplitudes + 0.3 / harmonics).astype(np.float32)
    t = _times(n_samples, sample_rate)
    vibrato = 1.0 + 0.006 * np.sin(2 * np.pi * 5.5 * t)
    # Integrate in float64 and wrap: harmonics of a wrapped phase are still in tune (integer
    # multiples), and float32 keeps full precision on small angles.
    cycles = np.cumsum(frequency * vibrato, dtype=np.float64) / sample_rate
    phase = (2 * np.pi * (cycles % 1.0)).astype(np.float32)
    envelope = np.minimum(1.0, t / 0.04) * np.minimum(1.0, (t[-1] - t) / 0.04 + 1e-3)
    return envelope * (amplitudes @ np.sin(np.outer(harmonics, phase))) / amplitudes.sum()


def _kick(*, sample_rate: int, softness: float, tonic: int) -> np.ndarray:
    """A kick drum: a sine falling from 2.5x to 1x the tonic (33-62 Hz) with a click.

    Tuned to the key, as producers do, so its pitch does not pull a key finder elsewhere; softer
    and longer when acoustic.
    """
    t = _times(int(0.3 * sample_rate), sample_rate)
    frequency = _frequency(24 + tonic) * (1.0 + 1.5 * np.exp(-t / 0.025))
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    body = np.sin(phase) * np.exp(-t / (0.12 + 0.1 * softness))
    click = np.exp(-t / 0.002) * (1.0 - 0.7 * softness)
    return body + 0.5 * click


def _noise_hit(
    rng: np.random.Generator, *, sample_rate: int, decay_s: float, band_hz: tuple[float, float]
) -> np.ndarray:
    """Band-passed noise with an exponential decay (snares, hats, brushes)."""
    t = _times(int(decay_s * 5 * sample_rate), sample_rate)
    b, a = signal.butter(2, band_hz, btype="bandpass", fs=sample_rate)
    noise = signal.lfilter(b, a, rng.standard_normal(len(t), dtype=np.float32))
    return noise / np.max(np.abs(noise)) * np.exp(-t / decay_s)


def _formant_filter(
    excitation: np.ndarray, formants_hz: tuple[float, ...], *, sample_rate: int
) -> np.ndarray:
    """Sum of resonant band-passes at ``formants_hz``, normalised to unit peak."""
    out = np.zeros_like(excitation)
    for formant in formants_hz:
        b, a = signal.iirpeak(formant, Q=formant / 120.0, fs=sample_rate)
        out += signal.lfilter(b, a, excitation)
    return out / np.max(np.abs(out))


def _timbre(features: Mapping[str, float], *, n_harmonics: int) -> np.ndarray:
    """Harmonic amplitudes: 1/h**p, p from ~2.6 (acoustic, dark) to ~1 (saw, bright).

    Valence brightens a little. Returns ndarray of shape (n_harmonics,).
    """
    rolloff = 1.0 + 1.6 * features["acousticness"] - 0.4 * (features["valence"] - 0.5)
    return (1.0 / np.arange(1, n_harmonics + 1) ** rolloff).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Helpers (float32 throughout: numpy's float32 sin and exp are an order of magnitude faster, and
# the phase error at 30 s, ~1e-7 relative, is inaudible)


def _frequency(midi_note: float) -> float:
    return 440.0 * 2.0 ** ((midi_note - 69) / 12.0)


def _times(n_samples: int, sample_rate: int) -> np.ndarray:
    """Sample times in seconds, float32, shape (n_samples,)."""
    return np.arange(n_samples, dtype=np.float32) / np.float32(sample_rate)


def _subdivide(beats: np.ndarray, beat_samples: float, per_beat: int) -> np.ndarray:
    """Onsets dividing each beat into ``per_beat`` parts, shape (len(beats) * per_beat,)."""
    offsets = np.round(np.arange(per_beat) * beat_samples / per_beat).astype(int)
    return (beats[:, None] + offsets[None, :]).ravel()


def _add_at(out: np.ndarray, sound: np.ndarray, onsets: np.ndarray, gains: np.ndarray) -> None:
    """Add ``gains[i] * sound`` into ``out`` at each ``onsets[i]``, cut at the end of ``out``."""
    for onset, gain in zip(onsets, gains):
        if onset >= len(out):
            continue
        end = min(len(out), onset + len(sound))
        out[onset:end] += gain * sound[: end - onset]
