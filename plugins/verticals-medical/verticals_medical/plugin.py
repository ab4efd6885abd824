"""Entry point of the medical plugin: registers its tasks."""

from __future__ import annotations

import verticals

VERTICALS_REQUIRES = ">=0.1,<0.2"


@verticals.hookimpl
def register_models(register):
    from verticals import ModelSpec, Packaged

    # The learned PHI tagger: a LoRA adapter + tag head over the first layers of the packaged MiniLM, trained on
    # generated text only (research/tagger_data.py --generated; EVAL.md). `verticals train medical.deidentify ...`
    # stores a new version; a promoted version (or VERTICALS_MODELS=medical.phi-tagger=PATH) wins over this one.
    register(ModelSpec(name="medical.phi-tagger", kind="token-classifier",
                       packaged=Packaged("verticals_medical", "models/phi_tagger"), max_length=256,
                       max_batch_tokens=8192,
                       description="PHI token tagger (MiniLM layers + LoRA, generated training text)"))


@verticals.hookimpl
def register_tasks(register):
    from verticals_medical.deidentify import DeidentifyTask
    from verticals_medical.entities import EntitiesTask

    register(DeidentifyTask)
    register(EntitiesTask)
