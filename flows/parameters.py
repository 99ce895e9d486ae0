"""Run parameters: their bounds and the one check of each (their defaults:
:mod:`songmix.tasks.options`).

Every size a user or a deployment gives is bounded here, before anything heavy starts: the
command line checks each value as it parses it (before Prefect starts or the pipeline is
imported), and each flow checks again what a deployment or an API call handed it. Messages are
one line and name the option.
"""

from __future__ import annotations

import re

from songmix.sources.schema import FIRST_RELEASE_YEAR, last_release_year

#: Most tracks a search run collects (Spotify's search stops at offset 1000 per query; beyond
#: 1000 the search is split by genre, and 10 000 keeps a run within hours).
MAX_TRACKS = 10_000
#: Most mixture components: more clusters than anyone can read, and each k is fitted
#: ``--seeds`` times.
MAX_K = 100
#: Most EM seeds per k (the notebook used 10).
MAX_SEEDS = 100
#: The demo catalog's genre-like groups.
MAX_DEMO_GROUPS = 8
_K_SPAN = re.compile(r"\s*(\d+)\s*-\s*(\d+)\s*")
_K_LIST = re.compile(r"\s*-?\d+\s*(?:,\s*-?\d+\s*)*")


def check_between(option: str, value: int, low: int, high: int) -> int:
    """``value`` when it is a whole number within ``low..high``; otherwise one line saying so.

    Raises
    ------
    ValueError
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{option} must be a whole number from {low} to {high} (got {value!r})")
    return value


def parse_ks(text: str) -> list[int]:
    """``"2-10"`` or ``"2,4,8"`` → the k to fit, each within 1..:data:`MAX_K`, checked before
    any list is built (``2-30000000`` is refused, not allocated).

    Raises
    ------
    ValueError
        Not a range or list of whole numbers, a range going down, or a k out of bounds.
    """
    span = _K_SPAN.fullmatch(text)
    if span is None and not _K_LIST.fullmatch(text):
        raise ValueError(f"--ks takes a range like 2-10 or a list like 2,4,8 (got {text!r})")
    numbers = [int(number) for number in (span.groups() if span else text.split(","))]
    for k in numbers:
        check_between("every k of --ks", k, 1, MAX_K)
    if span is None:
        return sorted(set(numbers))
    low, high = numbers
    if low > high:
        raise ValueError(f"--ks {text} goes down; write the smaller k first: {high}-{low}")
    return list(range(low, high + 1))


def validate_fit_parameters(
    *, k: int | None, ks: list[int], n_seeds: int, n_samples: int | None = None
) -> None:
    """Refuse a k, k list or seed count no fit can honour; with ``n_samples`` (the tracks a run
    already has), also a fixed k above it.

    Raises
    ------
    ValueError
    """
    if not ks:
        raise ValueError("--ks is empty; give the k to fit, e.g. 2-10")
    for each in ks:
        check_between("every k of --ks", each, 1, MAX_K)
    check_between("--seeds", n_seeds, 1, MAX_SEEDS)
    if k is not None:
        check_between("--k", k, 1, MAX_K)
        if n_samples is not None and k > n_samples:
            raise ValueError(f"--k {k} is more clusters than there are tracks ({n_samples}); "
                             "choose a smaller --k")


def validate_parameters(
    *, n_tracks: int | None, k: int | None, ks: list[int], n_seeds: int, demo_groups: int = 6,
    year: int | None = None,
) -> None:
    """Refuse parameters no run can honour, before anything is written. ``n_tracks``: the
    tracks a search lists (None for a data set, a folder or a stored run: their size bounds
    the run, and k must fit in it when it is fitted).

    Raises
    ------
    ValueError
    """
    if n_tracks is not None:
        check_between("--tracks", n_tracks, 1, MAX_TRACKS)
    validate_fit_parameters(k=k, ks=ks, n_seeds=n_seeds, n_samples=n_tracks)
    check_between("--demo-groups", demo_groups, 1, MAX_DEMO_GROUPS)
    if year is not None:
        check_between("--year", year, FIRST_RELEASE_YEAR, last_release_year())
