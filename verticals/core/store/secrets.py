"""Secret task parameters: stored encrypted, shown only as a fingerprint.

A task marks a parameter secret by typing it ``pydantic.SecretStr`` (``SecretStr | None`` for an
optional one). When a job is stored, each secret parameter is replaced in ``jobs.params`` by
``{"$sealed": <Fernet token>, "fingerprint": <12 hex>}``: encrypted (AES-128-CBC + HMAC-SHA256, the
``cryptography`` package's Fernet) with the *server key*. The engine decrypts it only to run the job;
everything that shows a job (``Store.summary``: ``verticals jobs status``, ``GET /v1/jobs/{id}``,
webhook bodies, the dashboard) shows ``redact_params``: ``"********** (fingerprint 3f2a...)"``.

The fingerprint is an HMAC of the value under the server key: equal fingerprints mean the same
secret (e.g. two jobs used the same surrogate key), and it cannot be used to test guesses without
the server key.

The server key: ``VERTICALS_SECRET_KEY`` (a Fernet key: ``python -c "from cryptography.fernet import
Fernet; print(Fernet.generate_key().decode())"``), else the file ``VERTICALS_SECRET_KEY_FILE``, else
``secret.key`` in the data dir, created (mode 0600) on first use. Every process that runs jobs of
a database (API server, workers, CLI) needs the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from verticals.config import data_dir, settings

SEALED = "$sealed"
MASK = "**********"


class SecretKeyError(RuntimeError):
    """The server key is missing, malformed, or not the one a job's secrets were encrypted with."""


def _is_secret_type(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return any(_is_secret_type(arg) for arg in typing.get_args(annotation))
    return False


def secret_fields(model: type[BaseModel]) -> list[str]:
    """Names of the parameters typed ``SecretStr`` (or ``SecretStr | None``)."""
    return [name for name, field in model.model_fields.items() if _is_secret_type(field.annotation)]


def key_path() -> Path:
    """``VERTICALS_SECRET_KEY_FILE``, or ``secret.key`` in the data dir."""
    configured = settings().secret_key_file
    return configured.expanduser() if configured else data_dir() / "secret.key"


def _create_key_file(path: Path) -> None:
    """Write a new key atomically (a temporary 0600 file hard-linked into place: the first process wins)."""
    from cryptography.fernet import Fernet

    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(Fernet.generate_key() + b"\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
    finally:
        temporary.unlink(missing_ok=True)


def server_key() -> bytes:
    """The server key (Fernet, 32 bytes url-safe base64)."""
    current = settings()
    value = current.secret_key.get_secret_value().strip() if current.secret_key else ""
    source = "VERTICALS_SECRET_KEY"
    if not value:
        path = key_path()
        if not path.exists() and not current.secret_key_file:
            _create_key_file(path)
        try:
            value = path.read_text().strip()
        except OSError as error:
            raise SecretKeyError(f"cannot read the server key file {path} ({error.strerror}): set "
                                 "VERTICALS_SECRET_KEY or VERTICALS_SECRET_KEY_FILE") from None
        source = str(path)
    try:
        if len(base64.urlsafe_b64decode(value.encode())) != 32:
            raise ValueError
    except ValueError:
        raise SecretKeyError(f"the server key in {source} is not a Fernet key (32 bytes, url-safe base64); "
                             "make one with: python -c \"from cryptography.fernet import Fernet; "
                             "print(Fernet.generate_key().decode())\"") from None
    return value.encode()


def fingerprint(value: str | bytes, key: bytes | None = None) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hmac.new(key or server_key(), b"verticals-fingerprint:" + data, hashlib.sha256).hexdigest()[:12]


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and SEALED in value


def seal_params(params: BaseModel) -> dict[str, Any]:
    """The JSON to store for validated params: secret ones encrypted, the rest as they are."""
    data = params.model_dump(mode="json")
    names = secret_fields(type(params))
    if not names:
        return data
    from cryptography.fernet import Fernet

    key = server_key()
    fernet = Fernet(key)
    for name in names:
        value = getattr(params, name)
        if value is None:
            data[name] = None
            continue
        plain = value.get_secret_value()
        raw = plain.encode() if isinstance(plain, str) else plain
        data[name] = {SEALED: fernet.encrypt(raw).decode(), "fingerprint": fingerprint(raw, key)}
    return data


def unseal_params(data: dict[str, Any] | None) -> dict[str, Any]:
    """Stored params with secret ones decrypted: only to validate them for running the job."""
    data = dict(data or {})
    sealed = [name for name, value in data.items() if is_sealed(value)]
    if not sealed:
        return data
    from cryptography.fernet import Fernet, InvalidToken

    fernet = Fernet(server_key())
    for name in sealed:
        try:
            data[name] = fernet.decrypt(data[name][SEALED].encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"cannot decrypt the secret parameter {name!r}: it was encrypted with another server key. Give "
                "this process the key of the server that stored the job (VERTICALS_SECRET_KEY or "
                "VERTICALS_SECRET_KEY_FILE, docs/security.md)") from None
    return data


def redact_params(data: dict[str, Any] | None) -> dict[str, Any]:
    """Stored params for display: secret ones as a mask and their fingerprint."""
    return {name: (f"{MASK} (fingerprint {value.get('fingerprint', '?')})" if is_sealed(value) else value)
            for name, value in (data or {}).items()}


def redact_request_params(model: type[BaseModel], params: dict[str, Any] | None) -> dict[str, Any]:
    """Request params (not yet validated) with the values of secret parameters replaced by their fingerprint:
    for hashing a request body (idempotency) without the secret itself."""
    names = set(secret_fields(model))
    if not names:
        return dict(params or {})
    key = server_key()
    return {name: (f"fingerprint:{fingerprint(str(value), key)}" if name in names and value is not None else value)
            for name, value in (params or {}).items()}
