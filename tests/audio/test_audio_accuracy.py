from __future__ import annotations

import numpy as np
import pytest

from songmix.audio.accuracy import key_string, key_weighted_score, tempo_accuracy


def test_perfect_tempi_score_one():
    reference = np.array([70.0, 120.0, 181.5])

    assert tempo_accuracy(reference, reference) == (1.0, 1.0)


@pytest.mark.parametrize("factor", [2.0, 3.0, 0.5, 1 / 3])
def test_octave_errors_count_only_for_acc2(factor):
    reference = np.array([90.0, 100.0])

    assert tempo_accuracy(reference * factor, reference) == (0.0, 1.0)


def test_four_percent_tolerance():
    reference = np.full(4, 100.0)
    estimated = np.array([103.9, 96.1, 104.1, 0.0])  # 0 = no estimate, never correct

    result = tempo_accuracy(estimated, reference)

    assert (result.acc1, result.acc2) == (0.5, 0.5)


def test_tolerance_scales_with_the_octave():
    # 2 x 100 BPM = 200 BPM, whose 4 % tolerance is 8 BPM.
    assert tempo_accuracy([207.0], [100.0]).acc2 == 1.0
    assert tempo_accuracy([209.0], [100.0]).acc2 == 0.0


@pytest.mark.parametrize(
    ("estimated", "reference", "match"),
    [([120.0], [120.0, 90.0], "pair up"), ([-1.0], [120.0], ">= 0"), ([120.0], [0.0], "> 0"),
     ([np.nan], [120.0], "NaN"), ([], [], "non-empty"), ([[120.0]], [[120.0]], "1-D")],
)
def test_tempo_accuracy_validates(estimated, reference, match):
    with pytest.raises(ValueError, match=match):
        tempo_accuracy(estimated, reference)


@pytest.mark.parametrize(
    ("estimate", "reference", "score"),
    [((0, 1), (0, 1), 1.0), ((7, 1), (0, 1), 0.5), ((9, 0), (0, 1), 0.3), ((0, 0), (0, 1), 0.2),
     ((3, 1), (0, 0), 0.3), ((1, 1), (0, 1), 0.0), ((-1, -1), (0, 1), 0.0)],
    ids=["same", "fifth", "relative-minor", "parallel", "relative-major", "other", "none"],
)
def test_key_weighted_score_follows_mir_eval(estimate, reference, score):
    assert key_weighted_score([estimate[0]], [estimate[1]], [reference[0]],
                              [reference[1]]) == pytest.approx(score)


def test_key_weighted_score_is_the_mean_over_tracks():
    assert key_weighted_score([0, 7], [1, 1], [0, 0], [1, 1]) == pytest.approx(0.75)


def test_key_strings_use_sharps():
    assert [key_string(1, 1), key_string(10, 0), key_string(-1, -1)] == [
        "C# major", "A# minor", "X"]


@pytest.mark.parametrize(("key", "mode"), [(12, 1), (0, 2), (0.5, 1)])
def test_key_weighted_score_validates_keys(key, mode):
    with pytest.raises(ValueError, match="pitch class"):
        key_weighted_score([key], [mode], [0], [1])


def test_key_weighted_score_validates_lengths():
    with pytest.raises(ValueError, match="pair up"):
        key_weighted_score([0, 1], [1, 1], [0], [1])
