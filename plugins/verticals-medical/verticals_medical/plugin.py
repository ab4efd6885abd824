"""Entry point of the medical plugin: registers its tasks."""

from __future__ import annotations

import verticals

VERTICALS_REQUIRES = ">=0.1,<0.2"


@verticals.hookimpl
def register_tasks(register):
    from verticals_medical.deidentify import DeidentifyTask
    from verticals_medical.entities import EntitiesTask

    register(DeidentifyTask)
    register(EntitiesTask)
