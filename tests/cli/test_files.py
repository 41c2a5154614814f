"""Reading events, requests, settings and schemas from files (no server)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fnbox.cli.files import (
    InputError,
    load_event_input,
    load_request,
    load_settings,
    load_settings_schema,
    read_text,
)
from fnbox.functions.v1 import resources_pb2


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_one_event_is_sent_as_the_files_own_bytes(tmp_path: Path) -> None:
    text = '{"type": "track",  "properties": {"price": 1.10}}\n'
    kind, payload = load_event_input(write(tmp_path, "e.json", text))
    assert kind == "event"
    assert payload == text.strip().encode()  # not re-encoded: 1.10 stays 1.10


def test_an_array_is_a_batch(tmp_path: Path) -> None:
    kind, payload = load_event_input(write(tmp_path, "b.json", '[{"type":"track"},{}]'))
    assert kind == "events"
    assert json.loads(payload) == [{"type": "track"}, {}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type": "track",\n  "x": }', "invalid JSON at line 2 column 8"),
        ("", "empty file"),
        ("42", "got a number"),
        ('[{"a": 1}, "x"]', "event #1 of the batch is a string"),
    ],
)
def test_bad_event_files_say_which_file_and_where(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "event.json", text)
    with pytest.raises(InputError) as caught:
        load_event_input(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


def test_missing_and_directory_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_text(str(tmp_path / "nope.js"))
    with pytest.raises(InputError, match="is a directory"):
        read_text(str(tmp_path))


def test_stdin_is_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'{"type":"identify"}')))
    assert load_event_input("-") == ("event", b'{"type":"identify"}')


def test_stdin_errors_name_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"{oops")))
    with pytest.raises(InputError, match=r"^<stdin>: invalid JSON at line 1 column 2"):
        load_settings("-")


def test_request_string_body_is_sent_as_utf8(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.json",
        json.dumps(
            {
                "method": "put",
                "url": "https://h/p?x=1",
                "headers": {"X-N": 3, "Content-Type": "text/plain"},
                "body": "héllo",
            }
        ),
    )
    request = load_request(path)
    assert (request.method, request.url) == ("PUT", "https://h/p?x=1")
    assert dict(request.headers) == {"X-N": "3", "Content-Type": "text/plain"}
    assert request.body == "héllo".encode()


def test_request_json_body_is_serialized_and_fields_default(tmp_path: Path) -> None:
    request = load_request(write(tmp_path, "r.json", '{"body": {"a": [1, true]}}'))
    assert json.loads(request.body) == {"a": [1, True]}
    assert (request.method, request.url) == ("POST", "http://localhost/")
    assert load_request(write(tmp_path, "e.json", "{}")).body == b""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"heders": {}}', "unknown key 'heders'"),
        ('{"headers": {"a": {"b": 1}}}', "header 'a' must be a string"),
        ('{"url": 3}', "'url' must be a non-empty string"),
        ("[]", "expected a request object, got an array"),
    ],
)
def test_bad_requests(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        load_request(write(tmp_path, "r.json", text))


def test_settings_must_be_an_object(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "s.json", '{"apiKey": "k"}\n')) == b'{"apiKey": "k"}'
    with pytest.raises(InputError, match="settings must be a JSON object, got an array"):
        load_settings(write(tmp_path, "s.json", "[1]"))


def test_settings_schema_types_are_case_insensitive(tmp_path: Path) -> None:
    schema = [
        {
            "name": "apiKey",
            "label": "API key",
            "type": "string",
            "required": True,
            "sensitive": True,
        },
        {"name": "tags", "type": "Array"},
        {"name": "map", "type": "text_map", "description": "d"},
        {"name": "flag", "type": "BOOLEAN"},
        {"name": "plain"},
    ]
    definitions = load_settings_schema(write(tmp_path, "schema.json", json.dumps(schema)))
    assert [(d.name, d.type) for d in definitions] == [
        ("apiKey", resources_pb2.SETTING_TYPE_STRING),
        ("tags", resources_pb2.SETTING_TYPE_ARRAY),
        ("map", resources_pb2.SETTING_TYPE_TEXT_MAP),
        ("flag", resources_pb2.SETTING_TYPE_BOOLEAN),
        ("plain", resources_pb2.SETTING_TYPE_STRING),
    ]
    first = definitions[0]
    assert (first.label, first.required, first.sensitive) == ("API key", True, True)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ('[{"name": "a", "type": "number"}]', "setting #0 \\(a\\): 'type' must be one of"),
        ('[{"label": "x"}]', "setting #0: 'name' must be a non-empty string"),
        ('[{"name": "a", "required": "yes"}]', "'required' must be true or false"),
        ('{"name": "a"}', "a settings schema is a JSON array"),
    ],
)
def test_bad_settings_schemas(tmp_path: Path, schema: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        load_settings_schema(write(tmp_path, "schema.json", schema))
