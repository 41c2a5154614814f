"""Settings sources and precedence, the secret key file, and the error translation point."""

from __future__ import annotations

import stat
from pathlib import Path

import grpc
import pytest
from cryptography.fernet import Fernet
from fnbox.executor import errors as executor_errors
from fnbox.server.errors import NotFound, SyntaxErrorInCode, rpc_status_of
from fnbox.server.secrets import load_secret_box
from fnbox.server.settings import AuthSettings, Settings, load_settings
from google.rpc import error_details_pb2, status_pb2


def test_arguments_beat_environment_beat_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "fnbox.toml"
    config.write_text(
        'data_dir = "/from/toml"\n'
        '[grpc]\nlisten = "0.0.0.0:1"\nstream_concurrency = 3\nshutdown_grace_s = 7\n'
        "[executor]\nwarm_workers = 5\n"
    )
    monkeypatch.setenv("FNBOX_GRPC__STREAM_CONCURRENCY", "9")
    monkeypatch.setenv("FNBOX_EXECUTOR__EGRESS_ALLOW", '["10.0.0.0/8"]')
    settings = load_settings(config_file=str(config), grpc={"listen": "127.0.0.1:5"})
    assert settings.grpc.listen == "127.0.0.1:5"  # argument
    assert settings.grpc.stream_concurrency == 9  # environment over file
    assert settings.grpc.shutdown_grace_s == 7  # file
    assert settings.executor.warm_workers == 5 and settings.executor.egress_allow == ["10.0.0.0/8"]
    assert settings.data_dir == Path("/from/toml")
    assert load_settings().grpc.listen == "127.0.0.1:50051"


def test_every_setting_has_a_description() -> None:
    def walk(model: type) -> list[str]:
        missing = []
        for name, info in model.model_fields.items():  # type: ignore[attr-defined]
            if not info.description:
                missing.append(f"{model.__name__}.{name}")
            annotation = info.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                missing += walk(annotation)
        return missing

    assert walk(Settings) == []


def test_secret_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    box = load_secret_box(AuthSettings(), tmp_path)
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    token = box.encrypt(b"value")
    assert b"value" not in token.encode()
    again = load_secret_box(AuthSettings(), tmp_path)
    assert again.decrypt(token) == b"value" and key_file.read_bytes() == key
    given = Fernet.generate_key().decode()
    # A string, as the key arrives from the environment or a settings file.
    auth = AuthSettings.model_validate({"secret_key": given})
    explicit = load_secret_box(auth, tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere" / "secret.key").exists()
    assert Fernet(given.encode()).decrypt(explicit.encrypt(b"x").encode()) == b"x"


def _info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    assert len(status.details) == 1 and status.details[0].Unpack(info)
    assert info.domain == "fnbox.dev"
    return info


def test_errors_translate_to_statuses_with_error_info() -> None:
    cases: list[tuple[BaseException, grpc.StatusCode, str]] = [
        (NotFound("fn_x", kind="function"), grpc.StatusCode.NOT_FOUND, "FUNCTION_NOT_FOUND"),
        (
            SyntaxErrorInCode("bad", line=3, column=7),
            grpc.StatusCode.INVALID_ARGUMENT,
            "SYNTAX_ERROR",
        ),
        (executor_errors.WorkerCrashed("died"), grpc.StatusCode.UNAVAILABLE, "WORKER_CRASHED"),
        (
            executor_errors.PoolOverloaded("full"),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "POOL_OVERLOADED",
        ),
        (
            executor_errors.CrashLoop("looping", key="k", retry_after_s=3),
            grpc.StatusCode.UNAVAILABLE,
            "CRASH_LOOP",
        ),
        (
            executor_errors.PayloadTooLarge("big"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAYLOAD_TOO_LARGE",
        ),
        (executor_errors.ExecutorClosed("closing"), grpc.StatusCode.UNAVAILABLE, "EXECUTOR_CLOSED"),
    ]
    for exc, code, reason in cases:
        status = rpc_status_of(exc)
        assert status.code == code.value[0] and _info(status).reason == reason
    syntax = rpc_status_of(SyntaxErrorInCode("bad", line=3, column=7))
    assert dict(_info(syntax).metadata) == {"line": "3", "column": "7"}
    assert "line 3, column 7" in syntax.message
    assert _info(rpc_status_of(executor_errors.WorkerCrashed("x"))).metadata["retryable"] == "true"

    leaked = rpc_status_of(RuntimeError("password=hunter2 in /secret/path"))
    assert leaked.code == grpc.StatusCode.INTERNAL.value[0]
    assert leaked.message == "internal error" and "hunter2" not in str(leaked)
    protocol = rpc_status_of(executor_errors.ProtocolError("frame header at /x"))
    assert protocol.code == grpc.StatusCode.INTERNAL.value[0] and "/x" not in protocol.message
