"""Where Spotify credentials come from, and that the secret never prints."""

from __future__ import annotations

import pytest

from songmix.sources.credentials import (
    CLIENT_ID_BLOCK,
    CLIENT_ID_ENV,
    CLIENT_SECRET_BLOCK,
    CLIENT_SECRET_ENV,
    MissingCredentialsError,
    SecretText,
    SpotifyCredentials,
    load_spotify_credentials,
)

SECRET = "s3cr3t-value-that-must-not-print"


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(CLIENT_ID_ENV, raising=False)
    monkeypatch.delenv(CLIENT_SECRET_ENV, raising=False)


def _no_blocks(name: str) -> str:
    raise AssertionError(f"block {name} must not be loaded when the environment has the value")


def test_environment_wins_and_blocks_are_not_touched(monkeypatch):
    monkeypatch.setenv(CLIENT_ID_ENV, "env-id")
    monkeypatch.setenv(CLIENT_SECRET_ENV, SECRET)
    credentials = load_spotify_credentials(load_secret_block=_no_blocks)
    assert credentials.client_id == "env-id"
    assert credentials.client_secret.reveal() == SECRET


def test_blocks_fill_what_the_environment_lacks(no_env, monkeypatch):
    monkeypatch.setenv(CLIENT_ID_ENV, "env-id")
    asked: list[str] = []

    def blocks(name: str) -> str:
        asked.append(name)
        return {CLIENT_SECRET_BLOCK: SECRET}[name]

    credentials = load_spotify_credentials(load_secret_block=blocks)
    assert asked == [CLIENT_SECRET_BLOCK]
    assert (credentials.client_id, credentials.client_secret.reveal()) == ("env-id", SECRET)


def test_blocks_alone(no_env):
    blocks = {CLIENT_ID_BLOCK: "block-id", CLIENT_SECRET_BLOCK: SECRET}
    credentials = load_spotify_credentials(load_secret_block=blocks.__getitem__)
    assert (credentials.client_id, credentials.client_secret.reveal()) == ("block-id", SECRET)


def test_missing_everywhere_explains_both_ways_without_leaking_block_errors(no_env):
    def unreachable(name: str) -> str:
        raise ConnectionError(f"cannot reach API holding {SECRET}")

    with pytest.raises(MissingCredentialsError) as caught:
        load_spotify_credentials(load_secret_block=unreachable)
    message = str(caught.value)
    for name in (CLIENT_ID_ENV, CLIENT_SECRET_ENV, CLIENT_ID_BLOCK, CLIENT_SECRET_BLOCK):
        assert name in message
    assert "ConnectionError" in message
    assert SECRET not in message


def test_empty_environment_values_count_as_missing(no_env, monkeypatch):
    monkeypatch.setenv(CLIENT_ID_ENV, "")
    monkeypatch.setenv(CLIENT_SECRET_ENV, "")
    with pytest.raises(MissingCredentialsError, match=f"{CLIENT_ID_ENV} is not set"):
        load_spotify_credentials(load_secret_block=lambda name: "")


def test_default_loader_reads_prefect_secret_blocks_verbatim(no_env, monkeypatch):
    from prefect.blocks.system import Secret

    # "123e4567" would come back from Secret.get() as the float 1.23e+71.
    stored = {CLIENT_ID_BLOCK: Secret(value="123e4567"), CLIENT_SECRET_BLOCK: Secret(value=SECRET)}
    monkeypatch.setattr(Secret, "load", classmethod(lambda cls, name, **kwargs: stored[name]))
    credentials = load_spotify_credentials()
    assert credentials.client_id == "123e4567"
    assert credentials.client_secret.reveal() == SECRET


def test_secret_never_prints():
    credentials = SpotifyCredentials("my-id", SECRET)
    assert isinstance(credentials.client_secret, SecretText)
    shown = [repr(credentials), str(credentials), f"{credentials.client_secret}", "%s" % credentials.client_secret]
    assert all(SECRET not in text for text in shown)
    assert "my-id" in repr(credentials) and "***" in repr(credentials)


def test_secret_text_compares_by_value_and_rejects_empty():
    assert SecretText(SECRET) == SecretText(SECRET)
    assert SecretText(SECRET) != SecretText("other")
    assert SpotifyCredentials("id", SECRET) == SpotifyCredentials("id", SecretText(SECRET))
    with pytest.raises(ValueError):
        SecretText("")
    with pytest.raises(ValueError):
        SpotifyCredentials("", SECRET)
