import pytest

from motioncache.engine import Engine
from motioncache.model_files import load_components
from motioncache.tiny_model import make_tiny_model


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_components(tiny_dir):
    return load_components(tiny_dir)


@pytest.fixture(scope="session")
def engine(tiny_components):
    return Engine(tiny_components)
