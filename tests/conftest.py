import importlib.util
from pathlib import Path

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


@pytest.fixture(scope="session")
def load_script():
    """scripts/NAME.py as a module, for testing a diagnostic script's functions."""
    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
