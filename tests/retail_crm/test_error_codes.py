"""Error codes: one enum per app in ``<app>/errors.py``, every raised code registered, all of them in the schema.

A front end branches on ``error.code``; these tests keep the list it is generated from (the OpenAPI ``Error``
component) complete and honest: no code raised as a loose string, none defined twice, none listed but never
raised.
"""

from __future__ import annotations

import ast
import json
from enum import StrEnum
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from rest_framework import exceptions

from retail_crm.api.errors import exception_handler
from retail_crm.errors import ApplicationError, ErrorCode, app_error_enums, error_codes

BASE_DIR = Path(settings.BASE_DIR).resolve()
PROJECT_APPS = [config for config in apps.get_app_configs() if Path(config.path).resolve().parent == BASE_DIR]
#: Calls whose first argument (or ``code=``) is an error code that ends up in an API response.
CODE_TAKING_CALLS = {"ApplicationError", "CallbackRejected", "_api_error", "error_body"}


def _source_files():
    """Every module of the project apps except migrations and the apps' ``errors.py`` themselves."""
    for config in PROJECT_APPS:
        for path in sorted(Path(config.path).rglob("*.py")):
            if "migrations" not in path.parts and path != Path(config.path) / "errors.py":
                yield path, ast.parse(path.read_text(), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(BASE_DIR)}:{node.lineno}"


def _is_string(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(node, ast.JoinedStr)


def _looks_like_our_code(node: ast.AST) -> bool:
    """A lower_snake string: our codes' form (a payment provider's own codes, ORDER_NOT_EXIST, are upper case)."""
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.replace("_", "").isalpha() and node.value == node.value.lower())


def _enum_reference(node: ast.AST) -> tuple[str, str] | None:
    """``(EnumName, MEMBER)`` for ``EnumName.MEMBER`` (optionally ``.value``), else None."""
    if isinstance(node, ast.Attribute) and node.attr == "value":
        node = node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id, node.attr
    return None


ENUMS_BY_NAME = {enum.__name__: enum for enum in app_error_enums().values()}


# ---------------------------------------------------------------------------- the register


def test_every_project_app_has_one_error_enum_named_after_it():
    enums = app_error_enums()

    assert list(enums) == [config.label for config in PROJECT_APPS]
    for label, enum in enums.items():
        assert issubclass(enum, StrEnum)
        assert enum.__module__ == f"{label}.errors"
        # retail_crm's enum holds the codes every app shares and keeps the name all apps import it by.
        expected = "ErrorCode" if label == "retail_crm" else label.title().replace("_", "") + "ErrorCode"
        assert enum.__name__ == expected


def test_codes_are_unique_across_and_within_apps():
    owners = error_codes()

    assert {code: apps_ for code, apps_ in owners.items() if len(apps_) > 1} == {}
    for enum in app_error_enums().values():
        assert len(enum.__members__) == len(enum), f"{enum.__name__} defines one value under two names"


def test_codes_are_lower_snake_case_and_sorted_in_the_register():
    codes = list(error_codes())

    assert codes == sorted(codes)
    assert [code for code in codes if not code.replace("_", "").isalpha() or code != code.lower()] == []


# ---------------------------------------------------------------------------- every code raised is registered


def test_no_error_code_is_written_as_a_string_outside_errors_py():
    loose, unknown = [], []
    for path, tree in _source_files():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name not in CODE_TAKING_CALLS:
                    continue
                code = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "code"),
                                                           None)
                if code is None:
                    continue
                reference = _enum_reference(code)
                if _is_string(code):
                    loose.append(_where(path, node))
                elif reference and reference[0] in ENUMS_BY_NAME and reference[1] not in ENUMS_BY_NAME[
                        reference[0]].__members__:
                    unknown.append(_where(path, node))
            elif isinstance(node, ast.Compare):
                # exc.code == "some_code", exc.code in ("a", "b")
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Attribute) and o.attr == "code" for o in operands):
                    strings = [o for o in operands if _looks_like_our_code(o)] + [
                        e for o in operands if isinstance(o, (ast.Tuple, ast.List, ast.Set)) for e in o.elts
                        if _looks_like_our_code(e)]
                    if strings:
                        loose.append(_where(path, node))
            elif isinstance(node, ast.Dict):
                # a hand-written error body: {"error": {"code": "..."}}
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "error" and isinstance(value, ast.Dict):
                        loose.extend(_where(path, value) for k, v in zip(value.keys, value.values, strict=True)
                                     if isinstance(k, ast.Constant) and k.value == "code" and _is_string(v))
            elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "default_code" for t in node.targets):
                if _is_string(node.value):
                    loose.append(_where(path, node))

    assert loose == [], "error codes as string literals; use the app's enum in <app>/errors.py"
    assert unknown == [], "references to enum members that do not exist"


def test_every_registered_code_is_raised_somewhere():
    referenced: set[tuple[str, str]] = set()
    for _path, tree in _source_files():
        for node in ast.walk(tree):
            reference = _enum_reference(node)
            if reference and reference[0] in ENUMS_BY_NAME:
                referenced.add(reference)

    never = [f"{enum.__name__}.{member}" for enum in ENUMS_BY_NAME.values() for member in enum.__members__
             if (enum.__name__, member) not in referenced]
    assert never == [], "codes nobody raises: remove them, or raise them"


def _api_exception_classes():
    found, todo = [], [exceptions.APIException]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def _instance(exc_class):
    from retail_crm.api.auth import LoginLocked

    if issubclass(exc_class, LoginLocked):
        return exc_class(message="Locked.", wait=60)
    if issubclass(exc_class, exceptions.Throttled):
        return exc_class(wait=3)
    if issubclass(exc_class, exceptions.MethodNotAllowed):
        return exc_class("PUT")
    if issubclass(exc_class, exceptions.UnsupportedMediaType):
        return exc_class("text/x-nothing")
    return exc_class()


def test_every_api_exception_answers_with_a_registered_code():
    import retail_crm.api.auth  # noqa: F401  (LoginLocked)
    import retail_crm.staff_tokens  # noqa: F401  (TokenExpired)

    registered = set(error_codes())
    answered = {}
    for exc_class in _api_exception_classes():
        response = exception_handler(_instance(exc_class), {})
        answered[exc_class.__name__] = response.data["error"]["code"]

    assert {name: code for name, code in answered.items() if code not in registered} == {}
    assert answered["MethodNotAllowed"] == "method_not_allowed"
    assert answered["UnsupportedMediaType"] == "unsupported_media_type"
    assert answered["NotAcceptable"] == "not_acceptable"
    assert answered["LoginLocked"] == "login_locked"


def test_an_application_error_answers_with_the_enum_value():
    from mall.errors import MallErrorCode

    response = exception_handler(ApplicationError(MallErrorCode.OUT_OF_STOCK, "Not enough.", status=409), {})

    assert response.status_code == 409
    assert response.data == {"error": {"code": "out_of_stock", "message": "Not enough."}}
    assert type(response.data["error"]["code"]) is str


# ---------------------------------------------------------------------------- the schema


@pytest.mark.django_db
def test_the_schema_error_component_lists_every_code_by_app(client):
    schema = json.loads(client.get("/api/schema/", {"format": "json"}).content)
    error = schema["components"]["schemas"]["Error"]
    code = error["properties"]["error"]["properties"]["code"]

    union = sorted({member.value for enum in app_error_enums().values() for member in enum})
    assert code["type"] == "string"
    assert code["enum"] == union == list(error_codes())
    assert set(ErrorCode) <= set(code["enum"])
    lines = {line.split(":", 1)[0].removeprefix("- "): line for line in code["description"].splitlines()
             if line.startswith("- ")}
    for label, enum in app_error_enums().items():
        if len(enum):
            assert all(f"`{member.value}`" in lines[label] for member in enum), label
        else:
            assert label not in lines
    # The rest of the shape is unchanged.
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]
