"""What the network looked at, for the gallery's page, measured through the session without Qt."""

from __future__ import annotations

import numpy as np
import pytest

from tests.session.test_session import HeldRunner, digits_session
from workbench.core.errors import WorkbenchError
from workbench.core.inspect.attribution import attribute, black_pixel


def test_the_maps_are_each_guess_s_attribution_by_the_inspector_s_method(tmp_path):
    session = digits_session(tmp_path)
    received = []
    session.looked_at.changed.connect(received.append)
    session.inspector.method = "integrated-gradients"
    session.look_at_gallery(7, [3, 0, 5])
    (maps,) = received
    assert maps.key == 7 and maps.indices == (3, 0, 5) and maps.method == "integrated-gradients"
    gallery, info = session.gallery, session.dataset.info
    guesses = gallery.probabilities[[3, 0, 5]].argmax(axis=1).tolist()
    model, architecture = session.inspector.network
    expected = attribute(
        model,
        architecture,
        gallery.images[[3, 0, 5]],
        guesses,
        "integrated-gradients",
        black_pixel(info.mean, info.std),
    )
    assert maps.maps.shape == (3, 8, 8)
    np.testing.assert_allclose(maps.maps, expected, rtol=1e-4, atol=1e-6)


def test_a_newer_request_drops_the_one_before_it(tmp_path):
    runner = HeldRunner()
    session = digits_session(tmp_path, runner)
    while runner.held:
        runner.finish()
    received = []
    session.looked_at.changed.connect(received.append)
    session.look_at_gallery(1, [0])
    session.look_at_gallery(2, [1, 2])
    assert session.looked_at.busy
    while runner.held:
        runner.finish()
    assert [maps.key for maps in received] == [2] and not session.looked_at.busy


def test_images_no_longer_in_the_gallery_or_no_network_are_refused_in_words(tmp_path):
    session = digits_session(tmp_path)
    with pytest.raises(WorkbenchError, match="no longer in the gallery"):
        session.look_at_gallery(1, [len(session.gallery.labels)])
    session.inspector.set_network(None, session.architecture, (), "")
    with pytest.raises(WorkbenchError, match="no network with weights"):
        session.look_at_gallery(1, [0])
