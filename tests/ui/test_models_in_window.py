"""Trained models in the window: your own images dropped on the gallery, export, opening a bundle."""

import torch
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QPushButton

from workbench.core.runs.predict import load_images
from workbench.core.training.engine import predict
from workbench.ui.dialogs.predict_dialog import PredictImagesDialog
from workbench.ui.images import ImageCell, to_display


def test_dropped_images_get_the_networks_guesses(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.runFinished, timeout=60_000):
        window.start_training()
    info = window.session.dataset.info
    originals = window.session.dataset.test_x[:4]
    paths = []
    for index, pixels in enumerate(to_display(originals, info.mean, info.std)):
        paths.append(tmp_path / f"digit-{index}.png")
        Image.fromarray(pixels[:, :, 0]).save(paths[-1])
    window.show_dropped_images(paths)
    guesses = predict(window.session.network.model, originals).argmax(dim=1).tolist()
    assert [caption.splitlines()[0] for caption in window.gallery.captions()] == [
        f"guess: {info.class_names[guess]}" for guess in guesses
    ]
    assert set(window.gallery.caption_colours()) == {"unknown"}

    (tmp_path / "notes.png").write_text("not a picture")
    window.show_dropped_images([paths[0], tmp_path / "notes.png"])
    assert "notes.png" in window.statusBar().currentMessage()
    assert len(window.gallery.captions()) == 4, "the gallery keeps what it showed"


def test_an_image_folder_trains_in_the_window_with_one_output_per_class(qtbot, window, tmp_path):
    from tests.helpers import draw_tree

    root = tmp_path / "shapes"
    draw_tree(root)
    name = f"folder:{root}"
    index = window.panel.add_folder(name, image_size=16, channels=1)
    window.panel.dataset.setCurrentIndex(index)
    qtbot.waitUntil(
        lambda: window.session.dataset is not None and window.session.dataset.info.name.startswith("folder:"),
        timeout=30_000,
    )
    classes = len(window.session.dataset.info.class_names)
    assert window.builder.architecture().num_classes == classes
    assert window.builder.architecture().layers[-1].params["out_features"] == classes
    window.panel.train_size.setValue(0)
    window.panel.val_size.setValue(0)
    with qtbot.waitSignal(window.runFinished, timeout=60_000) as finished:
        window.start_training()
    assert finished.args == ["finished"]


def test_export_from_the_window_writes_a_checked_file_and_a_bundle_opens_back(qtbot, window, tmp_path):
    from workbench.core.runs.trained import load_trained
    from workbench.ui.dialogs.export_dialog import ExportDialog

    with qtbot.waitSignal(window.runFinished, timeout=60_000):
        window.start_training()
    run = tmp_path / "run"
    assert window.session.network.run_folder == run
    dialog = ExportDialog(load_trained(run), window)
    dialog.format.setCurrentIndex(dialog.format.findData("onnx"))
    assert dialog.choice() == ("onnx", tmp_path / f"{load_trained(run).name}.onnx")
    dialog.deleteLater()

    target = tmp_path / "exports" / "digits.onnx"
    target.parent.mkdir()
    window.export_to(run, "onnx", target)
    qtbot.waitUntil(lambda: not window.session.phase.busy, timeout=120_000)
    assert target.is_file() and window.session.last_export.max_abs_diff <= 1e-4
    assert str(target) in window.statusBar().currentMessage()

    window.export_to(run, "onnx", tmp_path / "missing" / "folder" / "x.onnx")
    qtbot.waitUntil(lambda: not window.session.phase.busy, timeout=60_000)
    assert "export failed" in window.statusBar().currentMessage()

    bundle = tmp_path / "exports" / "bundle"
    window.export_to(run, "safetensors", bundle)
    qtbot.waitUntil(lambda: not window.session.phase.busy, timeout=60_000)
    window.load_preset("cnn-small")
    assert window.open_trained(bundle)
    assert [layer.type for layer in window.builder.architecture().layers] == ["Flatten", "Linear", "ReLU", "Linear"]
    assert window.session.network.run_folder == bundle
    images, _ = window.session.gallery_images()
    expected = predict(load_trained(bundle).model, images[window.gallery.visible_indices()]).argmax(dim=1)
    names = window.session.dataset.info.class_names
    assert [caption.splitlines()[1] for caption in window.gallery.captions()] == [
        f"predicted: {names[k]}" for k in expected.tolist()
    ]


def test_run_on_a_cluster_saves_the_hand_off_and_shows_torchrun_commands(window):
    import json
    import shlex

    window.panel.epochs.setValue(7)
    dialog = window.run_on_cluster()
    single, multi = dialog.commands()
    words = shlex.split(single)
    assert words[:3] == ["torchrun", "--standalone", "--nproc-per-node=2"]
    config = json.loads((dialog.folder / "config.json").read_text())
    assert config["epochs"] == 7 and config["dataset"] == "digits"
    assert words[words.index("--arch") + 1] == str(dialog.folder.resolve() / "architecture.json")
    dialog.machines.setValue(3)
    dialog.endpoint.setText("node0:29400")
    _, multi = dialog.commands()
    assert "--nnodes=3" in multi and "--rdzv-endpoint=node0:29400" in multi
    dialog.deleteLater()


def test_a_folder_chosen_in_the_dialogs_loads_with_the_image_size_chosen(qtbot, window, tmp_path):
    from tests.helpers import draw_tree
    from workbench.ui.panels.training_panel import CHOOSE_FOLDER

    root = tmp_path / "shapes"
    draw_tree(root)
    window.panel.choose_folder = lambda parent: str(root)
    window.panel.choose_image_options = lambda parent, info, size, channels: (16, 1)
    window.panel.dataset.setCurrentIndex(window.panel.dataset.findData(CHOOSE_FOLDER))
    qtbot.waitUntil(lambda: window.session.dataset.info.name.startswith("folder:"), timeout=30_000)
    assert window.session.dataset.info.input_shape == (1, 16, 16)
    assert window.builder.architecture().input_shape == (1, 16, 16)


def test_predict_images_from_the_menu_hints_at_invert_and_each_guess_can_be_inspected(qtbot, window, tmp_path):
    window.show_tab("training")
    qtbot.waitUntil(lambda: window.action_set["file.predict"].isEnabled())
    info = window.session.dataset.info
    originals = window.session.dataset.test_x[:3]
    paths = []
    for index, pixels in enumerate(to_display(originals, info.mean, info.std)):
        paths.append(tmp_path / f"paper-{index}.png")
        Image.fromarray(255 - pixels[:, :, 0]).save(paths[-1])  # dark digits on white paper
    window.action_set["file.predict"].trigger()
    dialog = window.findChild(PredictImagesDialog)
    assert dialog is not None and dialog.isVisible()
    predict_button = dialog.findChild(QPushButton, "predict")
    assert not predict_button.isEnabled(), "nothing to predict before files are chosen"

    (tmp_path / "notes.png").write_text("not a picture")
    dialog.set_paths([paths[0], tmp_path / "notes.png"])
    hint = dialog.findChild(QLabel, "hint")
    assert hint.isVisible() and "notes.png" in hint.text() and not predict_button.isEnabled()

    dialog.set_paths(paths)
    assert hint.isVisible() and "3 of your 3 images have a light background" in hint.text()
    invert = dialog.findChild(QCheckBox, "invert")
    qtbot.mouseClick(invert, Qt.MouseButton.LeftButton, pos=QPoint(8, invert.height() // 2))
    assert invert.isChecked() and not hint.isVisible()
    qtbot.mouseClick(predict_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()

    fed = load_images(paths, info.input_shape, info.mean, info.std, invert=True)
    guesses = predict(window.session.network.model, fed).argmax(dim=1).tolist()
    assert [caption.splitlines()[0] for caption in window.gallery.captions()] == [
        f"guess: {info.class_names[guess]}" for guess in guesses
    ]
    assert window.tabs.currentIndex() == 0
    cells = [cell for cell in window.gallery.findChildren(ImageCell) if not cell.isHidden()]
    qtbot.mouseDClick(cells[1], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.inspector.latest is not None and not window.session.inspector.busy)
    shown = window.session.inspector.latest
    assert shown.subject.label == -1 and shown.inspection.target == guesses[1], "the guess is sent back"
    assert torch.equal(shown.subject.image, fed[1])


def test_dropped_images_on_light_paper_get_a_hint_to_invert(qtbot, window, tmp_path):
    qtbot.waitUntil(lambda: window.session.network is not None and window.session.network.model is not None)
    info = window.session.dataset.info
    path = tmp_path / "paper.png"
    Image.fromarray(255 - to_display(window.session.dataset.test_x[:1], info.mean, info.std)[0, :, :, 0]).save(path)
    window.show_dropped_images([path])
    message = window.statusBar().currentMessage()
    assert message.startswith("Your image has a light background") and "File → Predict images…" in message
