"""Entry point of the verticals-tutor plugin: registers the tutor tasks."""

from __future__ import annotations

import verticals


@verticals.hookimpl
def register_tasks(register):
    from verticals_tutor.tasks import TutorGrade, TutorHint, TutorMastery

    register(TutorGrade)
    register(TutorMastery)
    register(TutorHint)
