from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ReloadModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadWatchlistsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("model_version", "watchlist_version", "rules_version")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    WATCHLIST_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULES_VERSION_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    watchlist_version: str
    rules_version: str
    def __init__(self, model_version: _Optional[str] = ..., watchlist_version: _Optional[str] = ..., rules_version: _Optional[str] = ...) -> None: ...
