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


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    from live import DemoWorld, ensure_cli_env

    ensure_cli_env()
    demo = DemoWorld(tmp_path_factory.mktemp("world"))
    yield demo
    demo.stop()


@pytest.fixture(scope="session")
def spec(world, tmp_path_factory):
    return world.spec(tmp_path_factory.mktemp("spec") / "colours.yaml")


@pytest.fixture(scope="session")
def live(spec):
    """One `clipstream serve` on the test spec for the whole session (stream "colours")."""
    from clipstream import serve

    with serve(spec) as server:
        yield server
