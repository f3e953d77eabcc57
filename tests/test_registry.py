"""The one registry helper and resolver, and the registries built on it."""
from __future__ import annotations

import importlib

import pytest

from edge_app.errors import UserError
from edge_app.registry import Registry, resolve, unknown

# Every named set of plug-ins, as "module:attribute" (the training-side ones need torch).
REGISTRIES = [
    "edge_app.backends.registry:BACKENDS",
    "edge_app.tasks.kinds:TASK_KINDS",
    "edge_app.model.inputs:INPUT_KINDS",
    "edge_app.detect.layouts:LAYOUTS",
    "edge_app.sim.scenes:SCENES",
    "edge_app.model.results:DECODERS",
    "edge_app.subject.providers:PROVIDERS",
    "edge_app.dataset.formats:FORMATS",
    "edge_app.train.shifts:SHIFTS",
    "edge_app.train.backbones:BACKBONES",
    "edge_app.train.hand_models:HEADS",
]


def test_register_refuses_a_second_entry_of_the_same_name():
    reg: Registry[int] = Registry("widget", [("a", 1)])
    assert reg.register("b", 2) == 2 and reg.names() == ("a", "b")
    with pytest.raises(ValueError, match="widget 'a' is registered twice"):
        reg.register("a", 3)
    assert reg["a"] == 1


def test_lookup_names_the_choices_and_the_nearest():
    reg: Registry[int] = Registry("--backend", [("onnx", 1), ("trt", 2)])
    assert reg.lookup("trt") == 2
    with pytest.raises(UserError) as err:
        reg.lookup("onx", hint="see edge-app doctor")
    line = str(err.value)
    assert line == ("unknown --backend 'onx'; choose from onnx, trt (did you mean 'onnx'?); "
                    "see edge-app doctor")
    assert "\n" not in unknown("x", "y", ["a"])


def test_decorator_registers_what_it_decorates():
    reg: Registry[type] = Registry("thing")

    @reg.decorator("mine")
    class Mine:
        pass

    assert reg["mine"] is Mine


def test_resolve_imports_module_attribute_strings():
    assert resolve("edge_app.registry:Registry") is Registry
    with pytest.raises(ValueError, match="not a 'module:attribute'"):
        resolve("edge_app.registry.Registry")
    with pytest.raises(ImportError):
        resolve("edge_app.no_such_module:X")
    with pytest.raises(UserError, match="^needs the extra: No module named"):
        resolve("edge_app.no_such_module:X", missing="needs the extra: {}")


@pytest.mark.parametrize("target", REGISTRIES)
def test_every_registry_uses_the_helper(target):
    module, _, attr = target.partition(":")
    if module.startswith("edge_app.train"):
        pytest.importorskip("torch")
    reg = getattr(importlib.import_module(module), attr)
    assert isinstance(reg, Registry) and len(reg) > 0 and reg.what


def test_every_training_target_on_the_device_side_resolves():
    """The "module:attribute" strings on-device registries hold name real objects."""
    pytest.importorskip("torch")
    from edge_app.backends.registry import BACKENDS
    from edge_app.model.inputs import INPUT_KINDS
    from edge_app.tasks.kinds import TASK_KINDS

    targets = [e.target for e in BACKENDS.values()] + [k.trainer for k in INPUT_KINDS.values()]
    targets += [k.trainer for k in TASK_KINDS.values() if k.trainer]
    for target in targets:
        assert resolve(target) is not None, target
    for kind in INPUT_KINDS.values():   # the training side answers the InputTraining protocol
        training = kind.training()
        for method in ("view", "train", "build", "predict", "scan"):
            assert callable(getattr(training, method)), (kind.name, method)
