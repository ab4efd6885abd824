"""Install steps that cannot be normal dependencies.

medspacy 1.3.1, PyRuSH 1.0.13 and medspacy_quickumls 3.2 declare ``spacy<3.8``
(and through it an older numpy); they work with spaCy 3.8, so they are
installed with ``--no-deps``. Their runtime needs are normal dependencies of
this distribution. Run by ``verticals plugins install medical`` / ``make setup``,
or by hand: ``python -m verticals_medical.install``.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

NO_DEPS = {"medspacy": "1.3.1", "PyRuSH": "1.0.13", "medspacy_quickumls": "3.2"}


def missing() -> list[str]:
    wanted = []
    for name, version in NO_DEPS.items():
        try:
            if importlib.metadata.version(name) == version:
                continue
        except importlib.metadata.PackageNotFoundError:
            pass
        wanted.append(f"{name}=={version}")
    return wanted


def post_install() -> None:
    """Idempotent: does nothing when the pinned versions are already there."""
    wanted = missing()
    if wanted:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--no-deps", *wanted])


if __name__ == "__main__":
    post_install()
