"""The layer catalog, the architecture document, validation and build."""

import json
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.architecture import Architecture, Layer, build, validate
from workbench.core.errors import ArchitectureError
from workbench.core.layers import CATALOG, GROUPS
from workbench.core.presets import describe_preset, load_preset, preset_names


def document(layers, **overrides):
    doc = {
        "format": "workbench-architecture",
        "version": 1,
        "name": "t",
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "layers": layers,
    }
    doc.update(overrides)
    return doc


def conv(channels, kernel=3, padding=1):
    return {"type": "Conv2d", "out_channels": channels, "kernel_size": kernel, "padding": padding}


def test_catalog_has_the_design_layers_with_help_and_groups():
    expected = {
        "Flatten",
        "Linear",
        "Conv2d",
        "MaxPool2d",
        "AvgPool2d",
        "AdaptiveAvgPool2d",
        "BatchNorm1d",
        "BatchNorm2d",
        "Dropout",
        "Dropout2d",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "GELU",
        "SiLU",
        "Sigmoid",
        "Tanh",
        "Softmax",
        "Identity",
    }
    assert expected <= set(CATALOG)
    for layer in CATALOG.values():
        assert layer.group in GROUPS and layer.help
        assert layer.torch_class.__name__ == layer.name
        for param in layer.params:
            assert param.help
            if param.kind in (int, float):
                assert param.minimum <= (param.default if param.default is not None else param.minimum)
                assert param.default is None or param.default <= param.maximum


def test_validate_reports_shapes_and_parameter_counts_per_layer():
    arch = Architecture.from_dict(
        document(
            [
                conv(32),
                {"type": "ReLU"},
                {"type": "MaxPool2d"},
                {"type": "Flatten"},
                {"type": "Linear", "out_features": 10},
            ]
        )
    )
    report = validate(arch)
    assert report.ok
    assert [row.output_shape for row in report.layers] == [(32, 28, 28), (32, 28, 28), (32, 14, 14), (6272,), (10,)]
    assert [row.parameters for row in report.layers] == [32 * 9 + 32, 0, 0, 0, 6272 * 10 + 10]
    assert report.total_parameters == 320 + 62730


def test_linear_after_an_image_names_the_layer_and_the_fix():
    arch = Architecture.from_dict(
        document([conv(32), {"type": "ReLU"}, {"type": "MaxPool2d"}, {"type": "Linear", "out_features": 10}])
    )
    report = validate(arch)
    assert not report.ok
    assert report.layers[3].error == "layer 4 Linear expects a flat input but gets 32×14×14: add a Flatten before it."
    with pytest.raises(ArchitectureError, match="add a Flatten before it"):
        build(arch)


@pytest.mark.parametrize(
    "layers, message",
    [
        ([{"type": "Flatten"}, conv(8)], r"layer 2 Conv2d expects an image .* 784 values"),
        (
            [conv(8, kernel=11, padding=0), {"type": "MaxPool2d", "kernel_size": 8}, conv(8, kernel=5, padding=0)],
            r"layer 3 Conv2d: its 5×5 window does not fit the 2×2 input",
        ),
        ([{"type": "MaxPool2d", "kernel_size": 2, "padding": 2}], r"padding 2 is more than half the kernel size"),
        ([{"type": "Flatten"}, {"type": "Linear", "out_features": 120}], r"ends with 120 values .* must end with 10"),
        ([conv(4)], r"ends with 4×28×28 values .* add a Flatten"),
        ([], r"no layers"),
    ],
)
def test_networks_that_do_not_fit_explain_why(layers, message):
    report = validate(Architecture.from_dict(document(layers)))
    assert not report.ok
    assert any(re.search(message, error) for error in report.errors), report.errors


@pytest.mark.parametrize(
    "doc, message",
    [
        ([], "must be a JSON object"),
        (document([], format="other"), "not a workbench architecture"),
        (document([], version=3), "newer workbench"),
        (document([], input_shape=[28, 28]), "input_shape"),
        (document([], num_classes=1), "num_classes"),
        (dict(document([]), layers={}), "'layers' must be a list"),
        (document([], colour="red"), "Unknown key 'colour'"),
        (document([{"type": "Linar"}]), "unknown layer type 'Linar' \\(did you mean 'Linear'\\?\\)"),
        (document([{"out_features": 3}]), "needs a 'type'"),
        (document([{"type": "Linear", "out_feature": 3}]), "did you mean 'out_features'"),
        (document([{"type": "Linear", "out_features": "3"}]), "out_features must be an integer from 1 to 4096"),
        (document([{"type": "Linear", "out_features": 5000}]), "out_features must be an integer from 1 to 4096"),
        (document([{"type": "Linear", "out_features": 3.0}]), "must be an integer"),
        (document([{"type": "Linear", "bias": 1}]), "bias must be true or false"),
        (document([{"type": "Dropout", "p": 1.5}]), "p must be a number from 0 to 0.95"),
        (document([{"type": "GELU", "approximate": "fast"}]), "one of 'none', 'tanh'"),
        (document([{"type": "Linear", "in_features": 784}]), "in_features is inferred"),
        (document([{"type": "ReLU", "inplace": True}]), "has no parameters"),
    ],
)
def test_malformed_documents_raise_the_spec_error(doc, message):
    with pytest.raises(ArchitectureError, match=message):
        Architecture.from_dict(doc)


def test_truncated_and_missing_files_raise_the_spec_error(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(document([{"type": "Flatten"}]))[:40])
    with pytest.raises(ArchitectureError, match="net.json is not valid JSON"):
        Architecture.load(path)
    with pytest.raises(ArchitectureError, match="No architecture file"):
        Architecture.load(tmp_path / "absent.json")
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ArchitectureError, match="not a text file"):
        Architecture.load(path)


def test_save_and_load_round_trip(tmp_path):
    arch = load_preset("cnn-small")
    arch.save(tmp_path / "copy.json")
    again = Architecture.load(tmp_path / "copy.json")
    assert again == arch
    assert json.loads((tmp_path / "copy.json").read_text())["layers"][0]["type"] == "Conv2d"


def test_softmax_and_final_sigmoid_are_allowed_with_a_warning():
    report = validate(load_preset("seed-sigmoidnet"))
    assert report.ok and "last layer" in report.warnings[0]
    report = validate(
        Architecture.from_dict(
            document([{"type": "Flatten"}, {"type": "Linear", "out_features": 10}, {"type": "Softmax"}])
        )
    )
    assert report.ok and "already applies a softmax" in report.warnings[0]


def test_presets_are_the_seed_networks_and_stronger_ones():
    names = preset_names()
    assert names[:4] == ["seed-linear", "seed-simplenet", "seed-sigmoidnet", "seed-relu-mlp"]
    assert {"mlp", "cnn-small", "cnn-strong"} <= set(names)
    counts = {name: validate(load_preset(name)).total_parameters for name in names}
    assert counts["seed-linear"] == 784 * 10 + 10
    assert counts["seed-simplenet"] == 784 * 120 + 120 + 120 * 10 + 10
    assert [layer.type for layer in load_preset("seed-simplenet").layers] == ["Flatten", "Linear", "Linear"]
    assert [layer.type for layer in load_preset("seed-sigmoidnet").layers][-1] == "Sigmoid"
    assert "95,410 params" in describe_preset("seed-simplenet")
    deep = {
        name: [layer.type for layer in load_preset(name).layers] for name in ("seed-sigmoidnet-6", "seed-relunet-6")
    }
    assert deep["seed-sigmoidnet-6"].count("Linear") == deep["seed-relunet-6"].count("Linear") == 6
    assert deep["seed-sigmoidnet-6"] == [kind.replace("ReLU", "Sigmoid") for kind in deep["seed-relunet-6"]]
    with pytest.raises(ArchitectureError, match="Did you mean 'cnn-small'"):
        load_preset("cnn-smal")


@pytest.mark.parametrize(
    "name",
    [
        "seed-linear",
        "seed-simplenet",
        "seed-sigmoidnet",
        "seed-relu-mlp",
        "mlp",
        "seed-sigmoidnet-6",
        "seed-relunet-6",
        "cnn-small",
        "cnn-strong",
    ],
)
def test_every_preset_builds_to_its_inferred_shape(name):
    arch = load_preset(name)
    report = validate(arch)
    model = build(arch)
    assert model(torch.randn(4, *arch.input_shape)).shape == (4, *report.output_shape) == (4, 10)
    assert sum(p.numel() for p in model.parameters()) == report.total_parameters


def _param_value(param):
    if param.kind is bool:
        return st.booleans()
    if param.kind is str:
        return st.sampled_from(param.choices)
    if param.kind is int:
        values = st.integers(int(param.minimum), min(int(param.maximum), 64))
    else:
        values = st.floats(param.minimum, param.maximum, allow_nan=False)
    return st.none() | values if param.optional else values


@st.composite
def layer_dicts(draw):
    layer = CATALOG[draw(st.sampled_from(sorted(CATALOG)))]
    chosen = draw(st.lists(st.sampled_from(layer.params), unique=True)) if layer.params else []
    return {"type": layer.name, **{param.name: draw(_param_value(param)) for param in chosen}}


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70) | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=8,
)


@st.composite
def documents(draw):
    """Mostly plausible architectures (so many build), with corruption mixed in."""
    num_classes = draw(st.integers(2, 12))
    layers = draw(st.lists(layer_dicts(), max_size=8))
    if draw(st.booleans()):
        layers += [{"type": "Flatten"}, {"type": "Linear", "out_features": num_classes}]
    doc = document(
        layers,
        num_classes=num_classes,
        input_shape=[draw(st.integers(1, 3)), draw(st.integers(1, 20)), draw(st.integers(1, 20))],
    )
    mutation = draw(st.integers(0, 9))
    if mutation == 0:
        doc[draw(st.sampled_from(sorted(doc)))] = draw(_json_values)
    elif mutation == 1 and doc["layers"]:
        doc["layers"][draw(st.integers(0, len(doc["layers"]) - 1))][draw(st.text(max_size=12))] = draw(_json_values)
    elif mutation == 2:
        return draw(_json_values)
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_any_document_builds_to_its_inferred_shape_or_raises_the_spec_error(doc):
    try:
        arch = Architecture.from_dict(doc)
        report = validate(arch)
        model = build(arch)
    except ArchitectureError:
        return
    output = model(torch.randn(2, *arch.input_shape))
    assert output.shape == (2, *report.output_shape) == (2, arch.num_classes)


def test_summary_names_layers_and_sizes():
    assert load_preset("seed-simplenet").summary() == "Flatten → Linear(120) → Linear(10)"
    assert Architecture("x", (1, 8, 8), 10, [Layer("ReLU")]).summary() == "ReLU"


def test_a_file_starting_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "notepad.json"
    path.write_text(json.dumps(document([{"type": "Flatten"}, {"type": "Linear", "out_features": 10}])), "utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert [layer.type for layer in Architecture.load(path).layers] == ["Flatten", "Linear"]
