"""The contract's typed handles (verticals/contract/handles.py) are what the core gives a task: a model loaded
by the model host is, by its kind, the protocol the contract names (mypy checks the core's classes against
them too: the TYPE_CHECKING block at the end of verticals/core/models/inference.py and tagging.py)."""

import typing

import verticals
from verticals.contract import ChatModel, Classifier, Encoder, Generator, JobSummary, ModelHandle, Tagger, Task


def test_a_loaded_encoder_is_the_contracts_encoder_and_nothing_else(tiny):
    from verticals.core.models.host import ModelHost

    model = ModelHost(tiny.models).get("tiny-encoder")
    assert isinstance(model, ModelHandle) and isinstance(model, Encoder)
    assert not isinstance(model, Classifier | Tagger | Generator | ChatModel)
    vectors = model.embed(["hello world", "a"])
    assert vectors.shape[0] == 2


def test_the_lazy_models_mapping_of_a_job_hands_out_those_handles(tiny):
    from verticals.core.jobs.pipeline import LazyModels
    from verticals.core.models.host import ModelHost

    models = LazyModels(ModelHost(tiny.models), {"encoder": "tiny-encoder"})
    assert isinstance(models["encoder"], Encoder)


def test_an_object_without_the_methods_is_not_a_handle():
    class Half:
        kind = "sequence-classifier"
        spec = None

        def provenance(self):
            return {}

    assert isinstance(Half(), ModelHandle) and not isinstance(Half(), Classifier)


def test_the_contract_types_what_plugins_touch_most():
    hints = typing.get_type_hints(Task.run)
    assert typing.get_args(hints["models"]) == (str, ModelHandle)
    assert typing.get_type_hints(Task)["evaluator"] == typing.ClassVar[verticals.contract.Evaluator | None]
    from verticals.contract import hooks

    assert typing.get_type_hints(hooks.job_finished)["job"] is JobSummary
    assert {"id", "task", "status", "counts"} <= set(JobSummary.__annotations__)
    assert verticals.Encoder is Encoder and verticals.JobSummary is JobSummary  # re-exported
    assert verticals.ChatModel is ChatModel
