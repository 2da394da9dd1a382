import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # fake_server, live helpers

from fake_server import FakeServer  # noqa: E402


@pytest.fixture
def fake():
    server = FakeServer()
    yield server
    server.close()
