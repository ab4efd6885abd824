import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The plugin's research scripts (research/: training, data preparation, evaluation on ../shared/data) are not
# part of the installed package; the tests of their helpers import them from there.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "research"))


@pytest.fixture(scope="session")
def host():
    from verticals.core.models.host import ModelHost
    from verticals.registry import get_registry

    return ModelHost(get_registry().models)
