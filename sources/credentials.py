"""Spotify client credentials: where they come from, and how they never leak.

Where they come from, first found wins, per value:

1. Environment variables ``SPOTIPY_CLIENT_ID`` and ``SPOTIPY_CLIENT_SECRET`` (the names
   spotipy itself reads).
2. Prefect ``Secret`` blocks named ``spotify-client-id`` and ``spotify-client-secret``, tried
   only for values the environment lacks. Create them once, in Python::

       from prefect.blocks.system import Secret
       Secret(value="...").save("spotify-client-id", overwrite=True)
       Secret(value="...").save("spotify-client-secret", overwrite=True)

   Loading a block needs a Prefect API: ``PREFECT_API_URL``, or else a temporary local server
   that Prefect starts (several seconds). A block that cannot be loaded counts as missing.

Where they never go: flow or task parameters (Prefect stores and shows those in plain text),
logs, tables, result files, exception messages. :class:`SecretText` prints as ``***``; only
:meth:`SecretText.reveal` returns the value, and only the HTTP client should call it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

CLIENT_ID_ENV = "SPOTIPY_CLIENT_ID"
CLIENT_SECRET_ENV = "SPOTIPY_CLIENT_SECRET"
CLIENT_ID_BLOCK = "spotify-client-id"
CLIENT_SECRET_BLOCK = "spotify-client-secret"


class MissingCredentialsError(RuntimeError):
    """Neither the environment nor Prefect's Secret blocks hold the Spotify credentials."""


class SecretText:
    """A string that shows as ``***`` in ``repr``, ``str`` and f-strings.

    Parameters
    ----------
    value : str
        The secret; must not be empty.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a secret must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "SecretText('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretText):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class SpotifyCredentials:
    """A Spotify app's client-credentials pair.

    Attributes
    ----------
    client_id : str
        The app's client id (not secret; it appears in Spotify's own URLs).
    client_secret : SecretText
        The app's client secret; a plain ``str`` given here is wrapped.
    """

    client_id: str
    client_secret: SecretText

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ValueError("client_id must not be empty")
        if isinstance(self.client_secret, str):
            object.__setattr__(self, "client_secret", SecretText(self.client_secret))
        elif not isinstance(self.client_secret, SecretText):
            raise TypeError("client_secret must be a str or a SecretText")


def load_spotify_credentials(
    *, load_secret_block: Callable[[str], str] | None = None
) -> SpotifyCredentials:
    """Find the Spotify credentials in the environment, else in Prefect Secret blocks.

    Parameters
    ----------
    load_secret_block : callable, optional
        ``name -> value`` reading one Prefect Secret block (injectable for tests); defaults to
        ``prefect.blocks.system.Secret.load``.

    Returns
    -------
    SpotifyCredentials

    Raises
    ------
    MissingCredentialsError
        When a value is in neither place; the message says how to provide it.
    """
    load_block = load_secret_block or _load_prefect_secret
    values: dict[str, str] = {}
    problems: list[str] = []
    for env_name, block_name in ((CLIENT_ID_ENV, CLIENT_ID_BLOCK), (CLIENT_SECRET_ENV, CLIENT_SECRET_BLOCK)):
        value = os.environ.get(env_name)
        if not value:
            try:
                value = load_block(block_name)
            except Exception as exc:  # noqa: BLE001 - any failure to reach a block means "not there"
                # The type only: a block error's text is not ours to vet for secrets.
                problems.append(f"Secret block {block_name!r} could not be loaded ({type(exc).__name__})")
                value = None
        if value:
            values[env_name] = value
        else:
            problems.append(f"{env_name} is not set")
    if problems:
        raise MissingCredentialsError(
            "Spotify credentials not found: "
            + "; ".join(problems)
            + f". Set {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV} in the environment, or save Prefect "
            f"Secret blocks named {CLIENT_ID_BLOCK!r} and {CLIENT_SECRET_BLOCK!r} "
            "(e.g. `Secret(value=...).save(name)`). Never pass them as flow parameters."
        )
    return SpotifyCredentials(values[CLIENT_ID_ENV], SecretText(values[CLIENT_SECRET_ENV]))


def _load_prefect_secret(name: str) -> str:
    from prefect.blocks.system import Secret

    block = Secret.load(name)
    # Not `block.get()`: it JSON-decodes the text, so an id like "123e4567" would become a float.
    value = block.value.get_secret_value()
    if not isinstance(value, str):
        raise TypeError(f"Secret block {name!r} holds a {type(value).__name__}, expected text")
    return value
