"""The app's engine pieces that need no server: ZeroGPU awareness, model choice, errors."""

import importlib
import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def test_spaces_gpu_wraps_handlers_when_the_package_exists(monkeypatch):
    calls = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda fn: calls.append(fn.__name__) or fn
    monkeypatch.setitem(sys.modules, "spaces", fake)
    import mmu_ui.engine as engine

    engine = importlib.reload(engine)
    assert engine.gpu is fake.GPU
    monkeypatch.delitem(sys.modules, "spaces")
    engine = importlib.reload(engine)  # elsewhere: a no-op that returns the function

    def handler():
        return 1

    assert engine.gpu(handler) is handler and engine.gpu()(handler) is handler


def test_model_choices_on_cpu_are_the_embedded_default():
    from mmu_ui.engine import has_gpu, model_choices

    if has_gpu():
        pytest.skip("a GPU is present: real ids are offered too")
    assert model_choices() == ["embedded"]


def test_user_errors_become_messages_on_the_page():
    import gradio as gr

    from mmu_core.data.inputs import InputError
    from mmu_ui.engine import user_errors

    @user_errors
    def bad():
        raise InputError("Please enter the text of the pair (it is empty).")

    with pytest.raises(gr.Error, match="it is empty"):
        bad()

    @user_errors
    def bug():
        raise ZeroDivisionError  # a bug is not dressed up as a user error

    with pytest.raises(ZeroDivisionError):
        bug()


def test_the_pages_method_list_is_the_registry():
    from mmu_core.unlearn import names
    from mmu_ui.engine import METHODS

    assert sorted(METHODS) == sorted(names())
