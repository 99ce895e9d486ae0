"""Failures a user can fix: reported as one line, without a traceback."""

from songmix.audio.decode import AudioDecodeError
from songmix.cli.predict import PredictionError
from songmix.sources.credentials import MissingCredentialsError
from songmix.warehouse.connection import WarehouseError

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    WarehouseError,
    MissingCredentialsError,
    AudioDecodeError,
    PredictionError,
    FileNotFoundError,
    PermissionError,
)
