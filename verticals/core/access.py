"""Who may name files on the server in a job: the :class:`~verticals.contract.ServerAccess` of a job.

A job of an API tenant (``tenant`` set) may name only regular files inside ``VERTICALS_DATA_ROOTS``; a
job without a tenant (the CLI, the in-process SDK: the operator's own) any regular file. Both are held to
``VERTICALS_DATA_MAX_FILE_MB`` / ``_MAX_FOLDER_MB``. The core passes :func:`access_context` to every
validation of a task's ``Params`` and ``Input`` (submit, run, predict, export); the contract's server-path
types (``ServerFile``, ``ServerFolder``, ``ServerModel``, ``OperatorOnly``) enforce it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel

from verticals.config import settings
from verticals.contract.files import MiB, ServerAccess, check_server_fields

__all__ = ["access_context", "check_rows", "server_access"]


def server_access(tenant: str | None) -> ServerAccess:
    """The access of a job of ``tenant`` (None: the operator's), from the settings now."""
    config = settings()
    roots = tuple(dict.fromkeys(os.path.realpath(os.path.expanduser(part.strip()))
                                for part in (config.data_roots or "").split(os.pathsep) if part.strip()))
    return ServerAccess(operator=tenant is None, roots=roots, max_file_bytes=config.data_max_file_mb * MiB,
                        max_folder_bytes=config.data_max_folder_mb * MiB)


def access_context(tenant: str | None) -> dict[str, Any]:
    """The pydantic validation context of a job of ``tenant``."""
    return server_access(tenant).context()


def check_rows(model: type[BaseModel], rows: Iterable[dict[str, Any]], access: ServerAccess
               ) -> Iterable[dict[str, Any]]:
    """``rows`` with ``model``'s server-path rules applied to each raw row before a task's ``read_items``
    sees it (testgen expands a named folder there): the first row naming what the tenant may not is a
    ``ServerPathError``. The operator's rows pass untouched."""
    if access.operator:
        return rows

    def checked() -> Iterator[dict[str, Any]]:
        for row in rows:
            if isinstance(row, dict):
                check_server_fields(model, row, access)
            yield row

    return checked()
