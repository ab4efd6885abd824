import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def host():
    from verticals.core.models import ModelHost
    from verticals.plugins import get_registry

    return ModelHost(get_registry().models)
