import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FunctionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUNCTION_TYPE_UNSPECIFIED: _ClassVar[FunctionType]
    FUNCTION_TYPE_SOURCE: _ClassVar[FunctionType]
    FUNCTION_TYPE_DESTINATION: _ClassVar[FunctionType]
    FUNCTION_TYPE_INSERT_DESTINATION: _ClassVar[FunctionType]
    FUNCTION_TYPE_INSERT_SOURCE: _ClassVar[FunctionType]

class SettingType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SETTING_TYPE_UNSPECIFIED: _ClassVar[SettingType]
    SETTING_TYPE_STRING: _ClassVar[SettingType]
    SETTING_TYPE_BOOLEAN: _ClassVar[SettingType]
    SETTING_TYPE_ARRAY: _ClassVar[SettingType]
    SETTING_TYPE_TEXT_MAP: _ClassVar[SettingType]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_READ_ONLY: _ClassVar[Role]
    ROLE_DEVELOPER: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]
FUNCTION_TYPE_UNSPECIFIED: FunctionType
FUNCTION_TYPE_SOURCE: FunctionType
FUNCTION_TYPE_DESTINATION: FunctionType
FUNCTION_TYPE_INSERT_DESTINATION: FunctionType
FUNCTION_TYPE_INSERT_SOURCE: FunctionType
SETTING_TYPE_UNSPECIFIED: SettingType
SETTING_TYPE_STRING: SettingType
SETTING_TYPE_BOOLEAN: SettingType
SETTING_TYPE_ARRAY: SettingType
SETTING_TYPE_TEXT_MAP: SettingType
ROLE_UNSPECIFIED: Role
ROLE_READ_ONLY: Role
ROLE_DEVELOPER: Role
ROLE_ADMIN: Role

class SettingDefinition(_message.Message):
    __slots__ = ("name", "label", "description", "type", "required", "sensitive")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    SENSITIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    label: str
    description: str
    type: SettingType
    required: bool
    sensitive: bool
    def __init__(self, name: _Optional[str] = ..., label: _Optional[str] = ..., description: _Optional[str] = ..., type: _Optional[_Union[SettingType, str]] = ..., required: _Optional[bool] = ..., sensitive: _Optional[bool] = ...) -> None: ...

class BatchOptions(_message.Message):
    __slots__ = ("max_count", "max_wait_ms")
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    max_count: int
    max_wait_ms: int
    def __init__(self, max_count: _Optional[int] = ..., max_wait_ms: _Optional[int] = ...) -> None: ...

class FunctionLimits(_message.Message):
    __slots__ = ("timeout_ms", "memory_mib", "no_network")
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    NO_NETWORK_FIELD_NUMBER: _ClassVar[int]
    timeout_ms: int
    memory_mib: int
    no_network: bool
    def __init__(self, timeout_ms: _Optional[int] = ..., memory_mib: _Optional[int] = ..., no_network: _Optional[bool] = ...) -> None: ...

class Function(_message.Message):
    __slots__ = ("name", "id", "display_name", "type", "code", "settings_schema", "batch", "limits", "latest_version", "deployed_version", "create_time", "update_time", "deploy_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEPLOYED_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    display_name: str
    type: FunctionType
    code: str
    settings_schema: _containers.RepeatedCompositeFieldContainer[SettingDefinition]
    batch: BatchOptions
    limits: FunctionLimits
    latest_version: int
    deployed_version: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    deploy_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., display_name: _Optional[str] = ..., type: _Optional[_Union[FunctionType, str]] = ..., code: _Optional[str] = ..., settings_schema: _Optional[_Iterable[_Union[SettingDefinition, _Mapping]]] = ..., batch: _Optional[_Union[BatchOptions, _Mapping]] = ..., limits: _Optional[_Union[FunctionLimits, _Mapping]] = ..., latest_version: _Optional[int] = ..., deployed_version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deploy_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Version(_message.Message):
    __slots__ = ("name", "version", "code", "settings_schema", "author", "create_time", "deployed", "latest", "deploy_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DEPLOYED_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    code: str
    settings_schema: _containers.RepeatedCompositeFieldContainer[SettingDefinition]
    author: str
    create_time: _timestamp_pb2.Timestamp
    deployed: bool
    latest: bool
    deploy_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., code: _Optional[str] = ..., settings_schema: _Optional[_Iterable[_Union[SettingDefinition, _Mapping]]] = ..., author: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deployed: _Optional[bool] = ..., latest: _Optional[bool] = ..., deploy_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Instance(_message.Message):
    __slots__ = ("name", "id", "display_name", "function", "function_type", "settings", "sensitive_settings", "enabled", "sources", "webhook_url", "create_time", "update_time", "insert_instance", "webhook_auth")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    SENSITIVE_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    INSERT_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_AUTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    display_name: str
    function: str
    function_type: FunctionType
    settings: bytes
    sensitive_settings: _containers.RepeatedScalarFieldContainer[str]
    enabled: bool
    sources: _containers.RepeatedScalarFieldContainer[str]
    webhook_url: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    insert_instance: str
    webhook_auth: WebhookAuth
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., display_name: _Optional[str] = ..., function: _Optional[str] = ..., function_type: _Optional[_Union[FunctionType, str]] = ..., settings: _Optional[bytes] = ..., sensitive_settings: _Optional[_Iterable[str]] = ..., enabled: _Optional[bool] = ..., sources: _Optional[_Iterable[str]] = ..., webhook_url: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., insert_instance: _Optional[str] = ..., webhook_auth: _Optional[_Union[WebhookAuth, _Mapping]] = ...) -> None: ...

class WebhookAuth(_message.Message):
    __slots__ = ("mode", "header", "secret", "has_secret")
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MODE_UNSPECIFIED: _ClassVar[WebhookAuth.Mode]
        MODE_SHARED_SECRET: _ClassVar[WebhookAuth.Mode]
        MODE_HMAC_SHA256: _ClassVar[WebhookAuth.Mode]
    MODE_UNSPECIFIED: WebhookAuth.Mode
    MODE_SHARED_SECRET: WebhookAuth.Mode
    MODE_HMAC_SHA256: WebhookAuth.Mode
    MODE_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    HAS_SECRET_FIELD_NUMBER: _ClassVar[int]
    mode: WebhookAuth.Mode
    header: str
    secret: str
    has_secret: bool
    def __init__(self, mode: _Optional[_Union[WebhookAuth.Mode, str]] = ..., header: _Optional[str] = ..., secret: _Optional[str] = ..., has_secret: _Optional[bool] = ...) -> None: ...

class Workspace(_message.Message):
    __slots__ = ("name", "id", "display_name", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    display_name: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., display_name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Token(_message.Message):
    __slots__ = ("name", "id", "role", "description", "secret", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    role: Role
    description: str
    secret: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., description: _Optional[str] = ..., secret: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
