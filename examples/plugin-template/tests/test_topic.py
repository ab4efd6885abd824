"""template.topic through the platform, the way a user calls it: the real encoder, no mocks."""

from verticals_template.topic import TopicOutput

import verticals


def test_topics_of_messages():
    client = verticals.Client()  # in process: the job engine and the model host of this process
    results = client.predict("template.topic", [{"text": "Where is my parcel? The tracking page shows nothing."},
                                                {"text": "I was billed twice for one order."},
                                                {"text": "   "}])
    outputs = [result.output_as(TopicOutput) for result in results]
    assert [output.label if output else None for output in outputs] == ["shipping", "billing", None]
    assert not results[2].ok and "empty" in (results[2].error or "")
    assert outputs[0] is not None and 0 < outputs[0].score <= 1


def test_eval_on_the_golden_set():
    run = verticals.Client().evaluate("template.topic")  # no data given: the plugin's golden set
    assert run["data"] == "golden:topic.jsonl" and run["metrics"]["n"] == 24
    assert 0 < run["metrics"]["accuracy"] <= 1
    assert set(run["details"]["per_class"]) == {"billing", "shipping", "account", "product"}
