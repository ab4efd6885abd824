"""verticals: a plugin platform for vertical AI solutions on transformer models.

The public API a plugin may import is the contract (:mod:`verticals.contract`), re-exported here::

    from verticals import Task, ModelSpec, Packaged, ItemError, RunContext, hookimpl
    from verticals import ClassificationEvaluator, SpanEvaluator, ProbabilityEvaluator, LeakEvaluator  # Task.evaluator
    from verticals import ServerFile, ServerFolder, ServerModel, OperatorOnly  # parameters naming server paths
    from verticals import Explanation, Evidence  # Task.explain: why a result is what it is

``import verticals`` loads the contract only (standard library, pydantic, pluggy); ``verticals.Client``, the
SDK, is imported on first use.
"""

__version__ = "0.1.0"

from verticals.contract import (
    AttributingClassifier,
    ChatModel,
    ClassificationEvaluator,
    Classifier,
    Encoder,
    Evidence,
    Explanation,
    Generator,
    ItemError,
    JobStatus,
    JobSummary,
    LeakEvaluator,
    ModelHandle,
    ModelRoles,
    ModelSpec,
    NoParams,
    OperatorOnly,
    OperatorPath,
    Packaged,
    ProbabilityEvaluator,
    RunContext,
    ServerFile,
    ServerFileHandle,
    ServerFolder,
    ServerFolderHandle,
    ServerModel,
    ServerPathError,
    SpanEvaluator,
    Tagger,
    Task,
    hookimpl,
)

__all__ = [
    "AttributingClassifier",
    "ChatModel",
    "ClassificationEvaluator",
    "Classifier",
    "Client",
    "Encoder",
    "Evidence",
    "Explanation",
    "Generator",
    "ItemError",
    "JobStatus",
    "JobSummary",
    "LeakEvaluator",
    "ModelHandle",
    "ModelRoles",
    "ModelSpec",
    "NoParams",
    "OperatorOnly",
    "OperatorPath",
    "Packaged",
    "ProbabilityEvaluator",
    "RunContext",
    "ServerFile",
    "ServerFileHandle",
    "ServerFolder",
    "ServerFolderHandle",
    "ServerModel",
    "ServerPathError",
    "SpanEvaluator",
    "Tagger",
    "Task",
    "__version__",
    "hookimpl",
]


def __getattr__(name: str):
    """``verticals.Client`` (the SDK) is imported on first use, so ``import verticals`` stays light."""
    if name == "Client":
        from verticals.client import Client

        return Client
    raise AttributeError(f"module 'verticals' has no attribute {name!r}")
