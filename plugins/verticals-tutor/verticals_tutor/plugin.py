"""Entry point of the verticals-tutor plugin: registers the tutor tasks."""

from __future__ import annotations

import verticals


@verticals.hookimpl
def register_tasks(register):
    from verticals_tutor.grade import TutorGrade
    from verticals_tutor.hint import TutorHint
    from verticals_tutor.mastery import TutorMastery

    register(TutorGrade)
    register(TutorMastery)
    register(TutorHint)
