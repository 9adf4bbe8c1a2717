import os

# Tests never reach a hub: every model and dataset comes from assets/ or is built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    from mmu_core.data.generate import generate_world

    root = tmp_path_factory.mktemp("tiny_world")
    generate_world(root, seed=0, size="tiny")
    return root


@pytest.fixture(scope="session")
def world():
    """The embedded default world (generated once into the user cache, ~5 s)."""
    from mmu_core.data.generate import default_world

    return default_world()


@pytest.fixture(scope="session")
def tiny_backbone(tiny_world):
    """A randomly initialised backbone of the real classes over the tiny world's words."""
    from mmu_core.models.embedded import EmbeddedSize, new_backbone
    from mmu_core.training.recipes import world_texts

    size = EmbeddedSize(image_size=32, patch_size=8, hidden=32, heads=2, embed_dim=16)
    return new_backbone(world_texts(tiny_world), size=size, seed=0)
