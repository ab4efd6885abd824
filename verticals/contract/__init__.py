"""The plugin contract: what a plugin implements and what the core gives it. Nothing else.

This package depends on the standard library, pydantic and pluggy only (a test checks that importing it loads no
other verticals module), so the core and every plugin can import it without pulling anything in:

- :class:`Task`, generic over its input, output and parameter models, with :class:`RunContext`,
  :class:`NoParams` and :class:`ItemError`;
- :class:`Explanation` and :class:`Evidence`: why a result is what it is (``Task.explain``, the job option
  ``explain``), checked by :func:`check_explanation`;
- :class:`ModelSpec` and :class:`Packaged`: the models a task names; the typed handles of the loaded models
  ``Task.run`` receives (:class:`ModelHandle`: :class:`Encoder`, :class:`Classifier` and
  :class:`AttributingClassifier`, :class:`Tagger`, :class:`Generator`, :class:`ChatModel`) and the
  :class:`JobSummary` the job hooks receive;
- :class:`JobStatus`: the states of a job;
- the evaluators a task declares to be scored (:class:`ClassificationEvaluator`, :class:`SpanEvaluator`,
  :class:`ProbabilityEvaluator`, :class:`LeakEvaluator`);
- the hook markers :data:`hookspec` / :data:`hookimpl` and every hook specification (docs/plugins.md
  documents each one);
- the types of parameters that name server files (:data:`ServerFile`, :data:`ServerFolder`,
  :data:`ServerModel`, :class:`OperatorOnly`) and the :class:`ServerAccess` the core enforces them with.

Its modules: :mod:`~verticals.contract.tasks`, :mod:`~verticals.contract.models`,
:mod:`~verticals.contract.handles`, :mod:`~verticals.contract.evaluators`, :mod:`~verticals.contract.explain`,
:mod:`~verticals.contract.hooks`,
:mod:`~verticals.contract.files`.
"""

from __future__ import annotations

from verticals.contract.evaluators import (
    ClassificationEvaluator,
    Evaluator,
    LeakEvaluator,
    ProbabilityEvaluator,
    Record,
    Scores,
    SpanEvaluator,
)
from verticals.contract.explain import EVIDENCE_KINDS, Evidence, Explanation, ExplanationError, check_explanation
from verticals.contract.files import (
    NO_ACCESS,
    OPERATOR,
    SERVER_ACCESS,
    OperatorOnly,
    OperatorPath,
    ServerAccess,
    ServerFile,
    ServerFileHandle,
    ServerFolder,
    ServerFolderHandle,
    ServerModel,
    ServerPathError,
    check_server_fields,
    server_fields,
)
from verticals.contract.handles import (
    AttributingClassifier,
    ChatModel,
    Classifier,
    Encoder,
    Generator,
    JobSummary,
    ModelHandle,
    ModelRoles,
    Tagger,
)
from verticals.contract.hooks import (
    finish_items,
    hookimpl,
    hookspec,
    job_finished,
    job_submitted,
    prepare_items,
    register_commands,
    register_models,
    register_tasks,
)
from verticals.contract.models import MODEL_KINDS, ModelKind, ModelSpec, Packaged
from verticals.contract.tasks import FINISHED_STATUSES, DeviceClass, ItemError, JobStatus, NoParams, RunContext, Task

__all__ = [
    "EVIDENCE_KINDS",
    "FINISHED_STATUSES",
    "MODEL_KINDS",
    "NO_ACCESS",
    "OPERATOR",
    "SERVER_ACCESS",
    "AttributingClassifier",
    "ChatModel",
    "ClassificationEvaluator",
    "Classifier",
    "DeviceClass",
    "Encoder",
    "Evaluator",
    "Evidence",
    "Explanation",
    "ExplanationError",
    "Generator",
    "ItemError",
    "JobStatus",
    "JobSummary",
    "LeakEvaluator",
    "ModelHandle",
    "ModelKind",
    "ModelRoles",
    "ModelSpec",
    "NoParams",
    "OperatorOnly",
    "OperatorPath",
    "Packaged",
    "ProbabilityEvaluator",
    "Record",
    "RunContext",
    "Scores",
    "ServerAccess",
    "ServerFile",
    "ServerFileHandle",
    "ServerFolder",
    "ServerFolderHandle",
    "ServerModel",
    "ServerPathError",
    "SpanEvaluator",
    "Tagger",
    "Task",
    "check_explanation",
    "check_server_fields",
    "finish_items",
    "hookimpl",
    "hookspec",
    "job_finished",
    "job_submitted",
    "prepare_items",
    "register_commands",
    "register_models",
    "register_tasks",
    "server_fields",
]
