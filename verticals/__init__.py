"""verticals: a plugin platform for vertical AI solutions on transformer models.

The public API a plugin may import::

    from verticals import Task, ModelSpec, Packaged, ItemError, RunContext, hookimpl
    from verticals import ClassificationEvaluator, SpanEvaluator, ProbabilityEvaluator  # Task.evaluator
"""

__version__ = "0.1.0"

from verticals.core.evaluators import ClassificationEvaluator, ProbabilityEvaluator, SpanEvaluator
from verticals.core.models import ModelHost, ModelSpec, ModelUnavailable, Packaged
from verticals.core.tasks import ItemError, NoParams, RunContext, Task
from verticals.hookspecs import hookimpl

__all__ = [
    "ClassificationEvaluator",
    "Client",
    "ItemError",
    "ModelHost",
    "ModelSpec",
    "ModelUnavailable",
    "NoParams",
    "Packaged",
    "ProbabilityEvaluator",
    "RunContext",
    "SpanEvaluator",
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
