"""The gradio interface (``inrgen.app.web``) and ``inrgen web``: the handlers it wires, a served page, and the
command's errors. Skipped where gradio (the ``web`` extra) is not installed, except the message that says
how to install it."""

from __future__ import annotations

import builtins
import socket
import urllib.request

import numpy as np
import pytest

from inrgen.app import functions as F
from inrgen.cli import main


@pytest.fixture(scope="module")
def ckpt(ckpts):
    return ckpts["vamoh-mnist-small"]


def _handlers(app) -> dict:
    return {f.name: f.fn for f in app.fns.values()}


def test_the_page_runs_every_image_task_through_the_pure_functions(ckpt):
    pytest.importorskip("gradio")
    from inrgen.app import web

    app = web.build_app(ckpt)
    fn = _handlers(app)
    assert {"on_load", "on_example", "on_input", "on_run", "on_views", "first"} <= set(fn)
    note, editor, mask = fn["on_load"](ckpt)
    assert "vamoh-mnist-small" in note
    # the mask canvas shows the model's input (28x28) enlarged by a whole factor
    assert editor["composite"].shape[:2] == (28, 28) and mask["background"].shape[:2] == (280, 280)
    painted = np.zeros((280, 280, 4), np.uint8)
    painted[:140, :, 3] = 255  # paint the top half: hidden
    outs = fn["on_run"](ckpt, editor, {"layers": [painted]}, "drawn", 0.25, "left", 2.0)
    observed, completion, composite, unc, sr, near, seg, ent, notes = outs
    demo = F.load_demo(ckpt)
    points = F.prepare_image(demo, editor)
    keep = F.keep_mask("drawn", (28, 28), painted={"layers": [painted]})
    ref = F.complete_image(demo, points, keep)
    assert np.array_equal(completion, F.to_display(ref.completion, web.DISPLAY))
    assert np.array_equal(observed, F.to_display(ref.observed, web.DISPLAY))
    assert unc is not None and seg is not None and ent is not None
    assert sr.shape == near.shape and sr.shape[0] >= 56
    assert "392 of 784 pixels observed" in notes and "mixture component" in notes
    # the first page view already shows results for the checkpoint's first test item
    first = fn["first"](ckpt)
    assert first[0] == note and first[3] is not None and first[-1] == ""
    # a wrong input is one clear message in the page, not a traceback
    import gradio as gr

    with pytest.raises(gr.Error, match="nothing is painted"):
        fn["on_run"](ckpt, editor, None, "drawn", 0.25, "left", 2.0)
    with pytest.raises(gr.Error, match="light-field"):
        fn["on_views"](ckpt, 0, "", 0, 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_app_serves_a_page(ckpt):
    pytest.importorskip("gradio")
    from inrgen.app import web

    port = _free_port()
    app = web.launch(ckpt, port=port, prevent_thread_lock=True, quiet=True)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30) as r:
            config = r.read().decode()
        assert r.status == 200 and "inrgen demo" in config and "super-resolution factor" in config
    finally:
        app.close()


def test_web_command_errors_are_one_line(tmp_path, capsys):
    pytest.importorskip("gradio")
    code = main(["web", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("inrgen: error:") and len(err.strip().splitlines()) == 1


def test_web_without_gradio_says_how_to_install(ckpt, capsys, monkeypatch):
    real = builtins.__import__

    def no_gradio(name, *args, **kwargs):
        if name == "gradio" or name.startswith("gradio."):
            raise ImportError("No module named 'gradio'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gradio)
    code = main(["web", ckpt])
    err = capsys.readouterr().err
    assert code == 1 and "inrgen[web]" in err and "pip install" in err
