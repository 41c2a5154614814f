import datetime

from fnbox.functions.v1 import invocation_pb2 as _invocation_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeadLetterStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEAD_LETTER_STAGE_UNSPECIFIED: _ClassVar[DeadLetterStage]
    DEAD_LETTER_STAGE_SOURCE: _ClassVar[DeadLetterStage]
    DEAD_LETTER_STAGE_DESTINATION: _ClassVar[DeadLetterStage]
DEAD_LETTER_STAGE_UNSPECIFIED: DeadLetterStage
DEAD_LETTER_STAGE_SOURCE: DeadLetterStage
DEAD_LETTER_STAGE_DESTINATION: DeadLetterStage

class DeadLetter(_message.Message):
    __slots__ = ("name", "id", "instance", "stage", "event", "request", "message_id", "outcome", "error", "logs", "version", "attempts", "reason", "first_attempt_time", "create_time", "replay_pending", "replay_version", "replay_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FIRST_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REPLAY_PENDING_FIELD_NUMBER: _ClassVar[int]
    REPLAY_VERSION_FIELD_NUMBER: _ClassVar[int]
    REPLAY_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    instance: str
    stage: DeadLetterStage
    event: bytes
    request: _invocation_pb2.WebhookRequest
    message_id: str
    outcome: _invocation_pb2.Outcome
    error: _invocation_pb2.UserError
    logs: _containers.RepeatedScalarFieldContainer[str]
    version: str
    attempts: int
    reason: str
    first_attempt_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    replay_pending: bool
    replay_version: int
    replay_count: int
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., instance: _Optional[str] = ..., stage: _Optional[_Union[DeadLetterStage, str]] = ..., event: _Optional[bytes] = ..., request: _Optional[_Union[_invocation_pb2.WebhookRequest, _Mapping]] = ..., message_id: _Optional[str] = ..., outcome: _Optional[_Union[_invocation_pb2.Outcome, str]] = ..., error: _Optional[_Union[_invocation_pb2.UserError, _Mapping]] = ..., logs: _Optional[_Iterable[str]] = ..., version: _Optional[str] = ..., attempts: _Optional[int] = ..., reason: _Optional[str] = ..., first_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replay_pending: _Optional[bool] = ..., replay_version: _Optional[int] = ..., replay_count: _Optional[int] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("parent", "instance", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    instance: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., instance: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("dead_letters", "next_page_token", "total_size")
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    next_page_token: str
    total_size: int
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetDeadLetterRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ReplayDeadLettersRequest(_message.Message):
    __slots__ = ("parent", "names", "instance", "version")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    parent: str
    names: _containers.RepeatedScalarFieldContainer[str]
    instance: str
    version: int
    def __init__(self, parent: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ..., instance: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ReplayDeadLettersResponse(_message.Message):
    __slots__ = ("queued",)
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    queued: int
    def __init__(self, queued: _Optional[int] = ...) -> None: ...

class PurgeDeadLettersRequest(_message.Message):
    __slots__ = ("parent", "names", "instance", "all")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    parent: str
    names: _containers.RepeatedScalarFieldContainer[str]
    instance: str
    all: bool
    def __init__(self, parent: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ..., instance: _Optional[str] = ..., all: _Optional[bool] = ...) -> None: ...

class PurgeDeadLettersResponse(_message.Message):
    __slots__ = ("purged",)
    PURGED_FIELD_NUMBER: _ClassVar[int]
    purged: int
    def __init__(self, purged: _Optional[int] = ...) -> None: ...

class RecordDeadLettersRequest(_message.Message):
    __slots__ = ("dead_letters",)
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ...) -> None: ...

class RecordDeadLettersResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: int
    def __init__(self, recorded: _Optional[int] = ...) -> None: ...

class ClaimReplaysRequest(_message.Message):
    __slots__ = ("limit", "lease_seconds")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    limit: int
    lease_seconds: int
    def __init__(self, limit: _Optional[int] = ..., lease_seconds: _Optional[int] = ...) -> None: ...

class ClaimReplaysResponse(_message.Message):
    __slots__ = ("dead_letters",)
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ...) -> None: ...
