"""app.errors: one base for every message meant for the user, one way to put it on one line."""

import pickle

import pytest

from app.audio.devices import AudioUnavailable, DeviceError
from app.audio.engine_config import EngineError
from app.audio.files import AudioFileError
from app.audio.recorder import RecordingError
from app.classic.errors import ClassicError, MissingPackageError, UnknownPathError
from app.codec.errors import CodecError, DerivedFileError, InputError, ModelContractError
from app.codec.prepare import PrepareError
from app.errors import AppError, one_line
from app.models.errors import CorruptModel, DownloadCancelled, DownloadError, HubUnresponsive, ModelUnavailable
from app.selftest import SelfTestError

USER_FACING = (CodecError, ModelContractError, InputError, DerivedFileError, PrepareError, DeviceError,
               AudioUnavailable, EngineError, AudioFileError, RecordingError, ModelUnavailable, CorruptModel,
               DownloadError, DownloadCancelled, HubUnresponsive, SelfTestError, ClassicError, UnknownPathError,
               MissingPackageError)


@pytest.mark.parametrize("kind", USER_FACING, ids=lambda kind: kind.__name__)
def test_every_user_facing_error_is_an_app_error(kind):
    assert issubclass(kind, AppError)


def test_one_line_folds_every_run_of_white_space():
    assert one_line("first\n  second\t\tthird \r\n") == "first second third"
    assert one_line(OSError("a\nb")) == "a b"


def test_the_method_gives_the_message_on_one_line_and_the_error_still_pickles():
    error = InputError("codes must be\n  int64")
    assert error.one_line() == "codes must be int64"
    assert isinstance(error, ValueError)  # callers that catch ValueError still do
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is InputError and again.one_line() == "codes must be int64"
