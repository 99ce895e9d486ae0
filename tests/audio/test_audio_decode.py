from __future__ import annotations

import numpy as np
import pytest
import soundfile
from audio_files import write_audio
from scipy.signal import resample_poly

from songmix.audio.decode import (
    ANALYSIS_SAMPLE_RATE,
    AudioDecodeError,
    decode_file,
    load_mono,
    resample,
)


def _sine(frequency: float, seconds: float, sample_rate: int) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(round(seconds * sample_rate))
                         / sample_rate)).astype(np.float32)


def _peak_frequency(samples: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / sample_rate)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("suffix", "sample_rate", "channels"),
    [(".wav", 8000, 1), (".flac", 48000, 2), (".ogg", 44100, 2), (".wav", 22050, 1)],
)
def test_files_decode_to_mono_float32_at_the_analysis_rate(tmp_path, suffix, sample_rate,
                                                          channels):
    tone = _sine(440.0, 2.0, sample_rate)
    path = write_audio(tmp_path / f"tone{suffix}", np.stack([tone] * channels, axis=1),
                       sample_rate)

    decoded = decode_file(path)

    assert decoded.samples.dtype == np.float32 and decoded.samples.ndim == 1
    assert decoded.sample_rate == ANALYSIS_SAMPLE_RATE
    assert (decoded.source_sample_rate, decoded.source_channels) == (sample_rate, channels)
    assert len(decoded.samples) == pytest.approx(2.0 * ANALYSIS_SAMPLE_RATE, abs=2)
    assert _peak_frequency(decoded.samples, ANALYSIS_SAMPLE_RATE) == pytest.approx(440, abs=3)
    assert not decoded.capped


def test_mp3_decodes(song_mp3):
    samples = load_mono(song_mp3)

    # MP3 frames pad the end; the decoder returns at least the encoded duration.
    assert len(samples) == pytest.approx(20.0 * ANALYSIS_SAMPLE_RATE, rel=0.01)
    assert 0.05 < np.abs(samples).max() <= 1.0


def test_channels_are_averaged(tmp_path):
    tone = _sine(440.0, 1.0, 22050)
    path = write_audio(tmp_path / "lr.wav", np.stack([tone, np.zeros_like(tone)], axis=1), 22050)

    assert np.abs(load_mono(path)).max() == pytest.approx(0.25, abs=1e-3)


def test_analysis_stops_at_max_seconds(tmp_path):
    path = write_audio(tmp_path / "long.flac", _sine(220.0, 12.0, 8000), 8000)

    decoded = decode_file(path, max_seconds=3.0)

    assert len(decoded.samples) == pytest.approx(3.0 * ANALYSIS_SAMPLE_RATE, abs=2)
    assert decoded.capped and decoded.source_seconds == pytest.approx(12.0)


def test_a_long_file_is_read_only_up_to_the_cap(tmp_path, monkeypatch):
    path = write_audio(tmp_path / "long.wav", _sine(220.0, 12.0, 8000), 8000)
    requested = []
    original_read = soundfile.SoundFile.read

    def spy_read(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return original_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(soundfile.SoundFile, "read", spy_read)
    decode_file(path, max_seconds=1.5)

    assert requested == [12000]


@pytest.mark.parametrize(("content", "reason", "described"), [
    (b"", "empty_file", "zero bytes long"),
    (b"<html><body>404 Not Found</body></html>\n" * 20, "not_audio", "starts with markup"),
    (b"just some text, not audio at all\n" * 50, "not_audio", "starts with text"),
    (b"root:x:0:0:root:/root:/bin/bash\n" * 40, "not_audio", "starts with text"),
    (b"<!doctype html><title>secret-token-123</title>" * 20, "not_audio", "starts with markup"),
    (b"PK\x03\x04\x00secret\x00" * 40, "not_audio", "starts with binary data"),
])
def test_non_audio_files_raise_with_a_reason_that_describes_them_never_quotes(tmp_path, content, reason,
                                                                              described):
    """Error texts are stored (item_failures) and shown: no one's file content goes in them."""
    path = tmp_path / "preview.mp3"
    path.write_bytes(content)

    with pytest.raises(AudioDecodeError) as raised:
        load_mono(path)

    assert raised.value.reason == reason and described in raised.value.detail
    assert isinstance(raised.value, ValueError)
    assert not any(word in str(raised.value) for word in ("404", "just some", "x:0:0", "secret", "PK"))


def test_missing_file_raises(tmp_path):
    with pytest.raises(AudioDecodeError, match="missing_file"):
        load_mono(tmp_path / "nowhere.wav")


def test_truncated_mp3_raises(tmp_path, song_mp3):
    data = song_mp3.read_bytes()
    path = tmp_path / "cut.mp3"
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(AudioDecodeError) as raised:
        load_mono(path)

    assert raised.value.reason == "truncated"


def test_mp3_with_a_damaged_middle_raises(tmp_path, song_mp3):
    data = bytearray(song_mp3.read_bytes())
    data[len(data) // 3: len(data) // 3 + 20000] = bytes(20000)
    path = tmp_path / "damaged.mp3"
    path.write_bytes(bytes(data))

    with pytest.raises(AudioDecodeError) as raised:
        load_mono(path)

    assert raised.value.reason in ("undecodable", "truncated")


def test_file_without_frames_raises(tmp_path):
    path = write_audio(tmp_path / "none.wav", np.zeros(0, dtype=np.float32), 22050)

    with pytest.raises(AudioDecodeError, match="no_frames"):
        load_mono(path)


def test_unsupported_sample_rate_raises(tmp_path):
    path = write_audio(tmp_path / "hires.wav", _sine(440.0, 0.5, 96000), 96000)

    with pytest.raises(AudioDecodeError, match="unsupported_sample_rate"):
        load_mono(path)


@pytest.mark.parametrize("bad_options", [{"sample_rate": 4000}, {"max_seconds": 0.0},
                                         {"max_seconds": float("nan")}])
def test_bad_options_raise_value_error(tmp_path, bad_options):
    path = write_audio(tmp_path / "ok.wav", _sine(440.0, 0.5, 22050), 22050)

    with pytest.raises(ValueError, match="sample_rate|max_seconds"):
        load_mono(path, **bad_options)


def test_resample_keeps_frequency_and_duration():
    tone = _sine(1000.0, 1.0, 48000)

    resampled = resample(tone, 48000, 22050)

    assert len(resampled) == 22050
    assert _peak_frequency(resampled, 22050) == pytest.approx(1000, abs=2)


def test_resample_rejects_rates_out_of_range():
    with pytest.raises(ValueError, match="from_rate"):
        resample(np.zeros(100), 96000, 22050)


@pytest.mark.parametrize("n_samples", [0, 1, 2, 41, 44100, 44101])
def test_halving_the_rate_equals_resample_poly(n_samples):
    samples = np.random.default_rng(12).standard_normal(n_samples).astype(np.float32)
    expected = resample_poly(samples, 1, 2) if n_samples else np.zeros(0)

    np.testing.assert_allclose(resample(samples, 44100, 22050), expected, atol=1e-5)
