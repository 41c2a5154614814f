from fnbox.functions.v1 import resources_pb2 as _resources_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_OK: _ClassVar[Outcome]
    OUTCOME_EVENT_NOT_SUPPORTED: _ClassVar[Outcome]
    OUTCOME_INVALID_EVENT_PAYLOAD: _ClassVar[Outcome]
    OUTCOME_VALIDATION_ERROR: _ClassVar[Outcome]
    OUTCOME_RETRY: _ClassVar[Outcome]
    OUTCOME_DROP: _ClassVar[Outcome]
    OUTCOME_TIMEOUT: _ClassVar[Outcome]
    OUTCOME_ERROR: _ClassVar[Outcome]
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_OK: Outcome
OUTCOME_EVENT_NOT_SUPPORTED: Outcome
OUTCOME_INVALID_EVENT_PAYLOAD: Outcome
OUTCOME_VALIDATION_ERROR: Outcome
OUTCOME_RETRY: Outcome
OUTCOME_DROP: Outcome
OUTCOME_TIMEOUT: Outcome
OUTCOME_ERROR: Outcome

class WebhookRequest(_message.Message):
    __slots__ = ("method", "url", "headers", "body")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    method: str
    url: str
    headers: _containers.ScalarMap[str, str]
    body: bytes
    def __init__(self, method: _Optional[str] = ..., url: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., body: _Optional[bytes] = ...) -> None: ...

class UserError(_message.Message):
    __slots__ = ("name", "message", "stack")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STACK_FIELD_NUMBER: _ClassVar[int]
    name: str
    message: str
    stack: str
    def __init__(self, name: _Optional[str] = ..., message: _Optional[str] = ..., stack: _Optional[str] = ...) -> None: ...

class OutboundRequest(_message.Message):
    __slots__ = ("method", "url", "status", "duration_ms", "error")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    method: str
    url: str
    status: int
    duration_ms: float
    error: str
    def __init__(self, method: _Optional[str] = ..., url: _Optional[str] = ..., status: _Optional[int] = ..., duration_ms: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class EventResult(_message.Message):
    __slots__ = ("outcome", "status", "error_message", "returned", "error_name")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    ERROR_NAME_FIELD_NUMBER: _ClassVar[int]
    outcome: Outcome
    status: int
    error_message: str
    returned: bytes
    error_name: str
    def __init__(self, outcome: _Optional[_Union[Outcome, str]] = ..., status: _Optional[int] = ..., error_message: _Optional[str] = ..., returned: _Optional[bytes] = ..., error_name: _Optional[str] = ...) -> None: ...

class InvocationResult(_message.Message):
    __slots__ = ("outcome", "events", "objects", "returned", "batch_statuses", "error", "logs", "logs_truncated", "requests", "duration_ms", "version", "handlers")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    BATCH_STATUSES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    LOGS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HANDLERS_FIELD_NUMBER: _ClassVar[int]
    outcome: Outcome
    events: _containers.RepeatedScalarFieldContainer[bytes]
    objects: _containers.RepeatedScalarFieldContainer[bytes]
    returned: bytes
    batch_statuses: _containers.RepeatedCompositeFieldContainer[EventResult]
    error: UserError
    logs: _containers.RepeatedScalarFieldContainer[str]
    logs_truncated: bool
    requests: _containers.RepeatedCompositeFieldContainer[OutboundRequest]
    duration_ms: float
    version: str
    handlers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, outcome: _Optional[_Union[Outcome, str]] = ..., events: _Optional[_Iterable[bytes]] = ..., objects: _Optional[_Iterable[bytes]] = ..., returned: _Optional[bytes] = ..., batch_statuses: _Optional[_Iterable[_Union[EventResult, _Mapping]]] = ..., error: _Optional[_Union[UserError, _Mapping]] = ..., logs: _Optional[_Iterable[str]] = ..., logs_truncated: _Optional[bool] = ..., requests: _Optional[_Iterable[_Union[OutboundRequest, _Mapping]]] = ..., duration_ms: _Optional[float] = ..., version: _Optional[str] = ..., handlers: _Optional[_Iterable[str]] = ...) -> None: ...

class InvokeFunctionRequest(_message.Message):
    __slots__ = ("target", "event", "events", "request", "settings", "request_id", "version", "trace_context")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TARGET_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    target: str
    event: bytes
    events: bytes
    request: WebhookRequest
    settings: bytes
    request_id: str
    version: int
    trace_context: _containers.ScalarMap[str, str]
    def __init__(self, target: _Optional[str] = ..., event: _Optional[bytes] = ..., events: _Optional[bytes] = ..., request: _Optional[_Union[WebhookRequest, _Mapping]] = ..., settings: _Optional[bytes] = ..., request_id: _Optional[str] = ..., version: _Optional[int] = ..., trace_context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RunFunctionRequest(_message.Message):
    __slots__ = ("parent", "type", "code", "event", "events", "request", "settings", "limits")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    parent: str
    type: _resources_pb2.FunctionType
    code: str
    event: bytes
    events: bytes
    request: WebhookRequest
    settings: bytes
    limits: _resources_pb2.FunctionLimits
    def __init__(self, parent: _Optional[str] = ..., type: _Optional[_Union[_resources_pb2.FunctionType, str]] = ..., code: _Optional[str] = ..., event: _Optional[bytes] = ..., events: _Optional[bytes] = ..., request: _Optional[_Union[WebhookRequest, _Mapping]] = ..., settings: _Optional[bytes] = ..., limits: _Optional[_Union[_resources_pb2.FunctionLimits, _Mapping]] = ...) -> None: ...

class InvokeStreamResponse(_message.Message):
    __slots__ = ("request_id", "result", "status")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    result: InvocationResult
    status: _status_pb2.Status
    def __init__(self, request_id: _Optional[str] = ..., result: _Optional[_Union[InvocationResult, _Mapping]] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class InvokeStreamBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[InvokeFunctionRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[InvokeFunctionRequest, _Mapping]]] = ...) -> None: ...

class InvokeStreamBatchResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[InvokeStreamResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[InvokeStreamResponse, _Mapping]]] = ...) -> None: ...
