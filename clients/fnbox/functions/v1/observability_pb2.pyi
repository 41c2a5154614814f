import datetime

from fnbox.functions.v1 import invocation_pb2 as _invocation_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.type import date_pb2 as _date_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogEntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_ENTRY_KIND_UNSPECIFIED: _ClassVar[LogEntryKind]
    LOG_ENTRY_KIND_ERROR: _ClassVar[LogEntryKind]
    LOG_ENTRY_KIND_SAMPLE: _ClassVar[LogEntryKind]
    LOG_ENTRY_KIND_LIVE: _ClassVar[LogEntryKind]
LOG_ENTRY_KIND_UNSPECIFIED: LogEntryKind
LOG_ENTRY_KIND_ERROR: LogEntryKind
LOG_ENTRY_KIND_SAMPLE: LogEntryKind
LOG_ENTRY_KIND_LIVE: LogEntryKind

class GetUsageRequest(_message.Message):
    __slots__ = ("parent", "function", "since")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    function: str
    since: _date_pb2.Date
    def __init__(self, parent: _Optional[str] = ..., function: _Optional[str] = ..., since: _Optional[_Union[_date_pb2.Date, _Mapping]] = ...) -> None: ...

class UsageRecord(_message.Message):
    __slots__ = ("function", "display_name", "day", "execution_ms", "invocations", "errors")
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_MS_FIELD_NUMBER: _ClassVar[int]
    INVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    function: str
    display_name: str
    day: _date_pb2.Date
    execution_ms: float
    invocations: int
    errors: int
    def __init__(self, function: _Optional[str] = ..., display_name: _Optional[str] = ..., day: _Optional[_Union[_date_pb2.Date, _Mapping]] = ..., execution_ms: _Optional[float] = ..., invocations: _Optional[int] = ..., errors: _Optional[int] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("records", "total_execution_ms", "total_invocations", "total_errors")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EXECUTION_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_INVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ERRORS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[UsageRecord]
    total_execution_ms: float
    total_invocations: int
    total_errors: int
    def __init__(self, records: _Optional[_Iterable[_Union[UsageRecord, _Mapping]]] = ..., total_execution_ms: _Optional[float] = ..., total_invocations: _Optional[int] = ..., total_errors: _Optional[int] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("name", "function", "instance", "version", "time", "kind", "outcome", "error", "logs", "logs_truncated", "requests", "duration_ms", "input", "input_truncated", "trace_id", "request_id", "fault")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    LOGS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    INPUT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    FAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    function: str
    instance: str
    version: str
    time: _timestamp_pb2.Timestamp
    kind: LogEntryKind
    outcome: _invocation_pb2.Outcome
    error: _invocation_pb2.UserError
    logs: _containers.RepeatedScalarFieldContainer[str]
    logs_truncated: bool
    requests: _containers.RepeatedCompositeFieldContainer[_invocation_pb2.OutboundRequest]
    duration_ms: float
    input: bytes
    input_truncated: bool
    trace_id: str
    request_id: str
    fault: _status_pb2.Status
    def __init__(self, name: _Optional[str] = ..., function: _Optional[str] = ..., instance: _Optional[str] = ..., version: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[LogEntryKind, str]] = ..., outcome: _Optional[_Union[_invocation_pb2.Outcome, str]] = ..., error: _Optional[_Union[_invocation_pb2.UserError, _Mapping]] = ..., logs: _Optional[_Iterable[str]] = ..., logs_truncated: _Optional[bool] = ..., requests: _Optional[_Iterable[_Union[_invocation_pb2.OutboundRequest, _Mapping]]] = ..., duration_ms: _Optional[float] = ..., input: _Optional[bytes] = ..., input_truncated: _Optional[bool] = ..., trace_id: _Optional[str] = ..., request_id: _Optional[str] = ..., fault: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class ListLogsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "errors_only")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ERRORS_ONLY_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    errors_only: bool
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., errors_only: _Optional[bool] = ...) -> None: ...

class ListLogsResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LogEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[LogEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class TailLogsRequest(_message.Message):
    __slots__ = ("parent", "errors_only")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_ONLY_FIELD_NUMBER: _ClassVar[int]
    parent: str
    errors_only: bool
    def __init__(self, parent: _Optional[str] = ..., errors_only: _Optional[bool] = ...) -> None: ...
