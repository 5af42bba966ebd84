"""The web demo: ``inrgen web CKPT [--port 7860] [--host 127.0.0.1]`` (gradio, ``pip install 'inrgen[web]'``).

Load any checkpoint folder, then

- *Image* (models of images): upload or draw an image (or take one of the checkpoint's test items),
  paint the pixels to hide on the mask canvas or pick a mask (VaMoH box, a half, out-paint, a random
  fraction), and see the completion with its per-pixel uncertainty, the super-resolution at a chosen
  factor beside nearest upsampling, and the segmentation / entropy maps of the mixture weights;
- *Novel views* (light-field models): an object's support views, the view from a camera orbited around
  it, and a held-out recorded view beside its rendering.

Everything computed lives in :mod:`inrgen.app.functions` (no gradio there, tested without it); this
module lays it out. Small images are shown enlarged by whole factors (nearest), so model pixels stay
sharp squares.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from inrgen.app import functions as F

__all__ = ["build_app", "launch", "require_gradio"]

DISPLAY = 256  # shortest side of a shown image, in screen pixels
EDITOR_HEIGHT = 330  # the input and mask canvases, and the result images, in screen pixels
RESULT_HEIGHT = 230
SIDES = ("left", "right", "top", "bottom")
MASK_LABELS = {
    "drawn": "painted on the mask canvas",
    "box": "box (the VaMoH square)",
    "half": "half",
    "outpaint": "out-paint (keep the centre)",
    "random": "random fraction kept",
    "none": "nothing hidden",
}


def require_gradio():
    """The gradio module, or an ImportError that says how to install it."""
    try:
        import gradio as gr
    except ImportError as err:
        raise ImportError(
            "the web demo needs gradio: pip install -c constraints.txt 'inrgen[web]' (or gradio itself)"
        ) from err
    return gr


def _show(image: np.ndarray | None) -> np.ndarray | None:
    return None if image is None else F.to_display(image, DISPLAY)


def _blank_canvas(demo: F.DemoModel | None) -> dict[str, Any]:
    """A black canvas of the model's grid (enlarged) to draw on with a white brush."""
    h, w = demo.grid_shape[:2] if demo is not None and demo.grid_shape else (28, 28)
    bg = F.to_display(np.zeros((h, w, 3), np.uint8), DISPLAY)
    return {"background": bg, "layers": [], "composite": bg}


def _editor_value(image: np.ndarray) -> dict[str, Any]:
    return {"background": image, "layers": [], "composite": image}


def build_app(ckpt: str | os.PathLike | None = None):
    """The gradio ``Blocks`` of the demo; ``ckpt`` is filled in and loaded when the page opens."""
    gr = require_gradio()

    def fail(err: Exception):
        return gr.Error(str(err))

    def load(path: str):
        try:
            demo = F.load_demo(path)
        except (ValueError, OSError, KeyError) as err:
            raise fail(err) from None
        return demo

    # ---------------------------------------------------------------- handlers (thin: F does the work)
    def on_load(path: str):
        """Describe the checkpoint and, when its data is here, start from its first test item."""
        demo = load(path)
        editor, mask = _blank_canvas(demo), _blank_canvas(demo)
        note = demo.describe()
        if demo.is_image:
            try:
                first = F.example_image(demo, 0)
                editor = _editor_value(first)
                mask = _editor_value(
                    F.to_display(F.to_uint8(F.prepare_image(demo, first).to_image()[0]), DISPLAY)
                )
            except ValueError as err:
                note += f"\n\n{err}"
        return note, editor, mask

    def on_example(path: str, index: float):
        demo = load(path)
        try:
            img = F.example_image(demo, int(index or 0))
        except ValueError as err:
            raise fail(err) from None
        return _editor_value(img)

    def on_input(path: str, value: Any):
        """Show the model's view of the input (its grid, enlarged) on the mask canvas."""
        if value is None or (isinstance(value, dict) and value.get("composite") is None):
            return gr.update()
        demo = load(path)
        if not demo.is_image:
            return gr.update()
        try:
            points = F.prepare_image(demo, value)
        except ValueError:
            return gr.update()
        return _editor_value(F.to_display(F.to_uint8(points.to_image()[0]), DISPLAY))

    def on_run(path: str, value: Any, mask: Any, kind: str, fraction: float, side: str, factor: float):
        demo = load(path)
        try:
            points = F.prepare_image(demo, value)
            shape = tuple(points.grid_shape or ())
            keep = F.keep_mask(kind, shape, fraction=fraction, side=side, painted=mask)
            comp = F.complete_image(demo, points, keep)
            sr = F.superresolve_image(demo, points, factor)
            seg = F.segment_image(demo, points)
        except ValueError as err:
            raise fail(err) from None
        h, w = shape
        ch = "grey" if demo.channels == 1 else "RGB"
        notes = [
            f"Input: {w}x{h} {ch}; hidden: {MASK_LABELS.get(kind, kind)}.",
            comp.summary(),
            f"Super-resolution x{factor:g}: {sr.shape[1]}x{sr.shape[0]}.",
        ]
        if comp.uncertainty is None:
            notes.append("This model predicts no variance: no uncertainty map.")
        notes.append(
            seg.summary() if seg is not None else "This model has no mixture weights: no segmentation."
        )
        big = max(DISPLAY, max(sr.shape))
        return (
            _show(comp.observed),
            _show(comp.completion),
            _show(comp.composite),
            _show(comp.uncertainty),
            F.to_display(sr.image, big),
            F.to_display(sr.nearest, big),
            None if seg is None else _show(seg.segmentation),
            None if seg is None else _show(seg.entropy),
            "\n\n".join(notes),
        )

    def on_views(path: str, index: float, folder: str, azimuth: float, elevation: float):
        demo = load(path)
        try:
            views = F.load_views(demo, int(index or 0), folder or None)
            out = F.novel_view_images(demo, views, azimuth, elevation)
        except ValueError as err:
            raise fail(err) from None
        txt = f"{views.source}: {len(views.images)} support view(s). {out.summary()}"
        return _show(out.support), _show(out.view), _show(out.held_out), txt

    # ---------------------------------------------------------------------------------- layout
    with gr.Blocks(title="inrgen demo", analytics_enabled=False, fill_width=True) as app:
        with gr.Row(equal_height=True):
            gr.Markdown("## inrgen web demo", elem_id="title")
            path = gr.Textbox(value=str(ckpt or ""), label="checkpoint folder", scale=4)
            load_btn = gr.Button("Load", scale=1)
        info = gr.Markdown()
        with gr.Tab("Image"):
            with gr.Row():
                editor = gr.ImageEditor(
                    label="input: upload or draw",
                    type="numpy",
                    image_mode="RGBA",
                    sources=("upload", "clipboard"),
                    brush=gr.Brush(colors=["#ffffff", "#000000", "#888888"], default_color="#ffffff"),
                    canvas_size=(DISPLAY, DISPLAY),
                    height=EDITOR_HEIGHT,
                )
                mask = gr.ImageEditor(
                    label="mask: paint the pixels to hide",
                    type="numpy",
                    image_mode="RGBA",
                    sources=(),
                    brush=gr.Brush(colors=["#e6408c"], default_color="#e6408c", color_mode="fixed"),
                    canvas_size=(DISPLAY, DISPLAY),
                    height=EDITOR_HEIGHT,
                )
                with gr.Column():
                    kind = gr.Dropdown(
                        [(MASK_LABELS[k], k) for k in F.MASK_KINDS], value="box", label="hidden pixels"
                    )
                    with gr.Row():
                        fraction = gr.Slider(0.01, 1.0, value=0.25, step=0.01, label="random: fraction kept")
                        side = gr.Dropdown(list(SIDES), value="left", label="half: the half kept")
                    factor = gr.Slider(1.0, 8.0, value=4.0, step=0.5, label="super-resolution factor")
                with gr.Column():
                    with gr.Row():
                        index = gr.Number(value=0, precision=0, label="test item", minimum=0)
                        example_btn = gr.Button("Load test item")
                    run_btn = gr.Button("Run", variant="primary")
                    notes = gr.Markdown()
            with gr.Row():
                observed = gr.Image(label="observed", format="png", height=RESULT_HEIGHT)
                completion = gr.Image(label="completion", format="png", height=RESULT_HEIGHT)
                composite = gr.Image(label="observed + completed", format="png", height=RESULT_HEIGHT)
                uncertainty = gr.Image(
                    label="uncertainty (predictive std)", format="png", height=RESULT_HEIGHT
                )
            with gr.Row():
                superres = gr.Image(label="super-resolution", format="png", height=RESULT_HEIGHT)
                nearest = gr.Image(label="nearest upsampling (baseline)", format="png", height=RESULT_HEIGHT)
                segmentation = gr.Image(
                    label="segmentation (mixture component)", format="png", height=RESULT_HEIGHT
                )
                entropy = gr.Image(label="entropy of the mixture weights", format="png", height=RESULT_HEIGHT)
        with gr.Tab("Novel views"):
            with gr.Row():
                v_index = gr.Number(value=0, precision=0, label="test object", minimum=0)
                v_folder = gr.Textbox(label="or an object folder (transforms.json + PNGs)", scale=3)
            with gr.Row():
                azimuth = gr.Slider(-180, 180, value=45, step=5, label="azimuth (degrees)")
                elevation = gr.Slider(-80, 80, value=0, step=5, label="elevation (degrees)")
                views_btn = gr.Button("Render", variant="primary")
            with gr.Row():
                support = gr.Image(label="support views", format="png")
                view = gr.Image(label="new view", format="png")
                held = gr.Image(label="held-out view: recorded | rendered", format="png")
            v_notes = gr.Markdown()

        run_inputs = [path, editor, mask, kind, fraction, side, factor]
        run_outputs = [observed, completion, composite, uncertainty, superres, nearest, segmentation, entropy,
                       notes]  # fmt: skip
        load_btn.click(on_load, [path], [info, editor, mask])
        example_btn.click(on_example, [path, index], [editor])
        editor.change(on_input, [path, editor], [mask])  # uploads, drawings and loaded test items
        run_btn.click(on_run, run_inputs, run_outputs)
        views_btn.click(
            on_views, [path, v_index, v_folder, azimuth, elevation], [support, view, held, v_notes]
        )
        if ckpt:

            def first(p: str):
                note, ed, mk = on_load(p)
                demo = F.load_demo(p)
                if demo.is_image and isinstance(ed.get("composite"), np.ndarray):
                    try:
                        outs = on_run(p, ed, mk, "box", 0.25, "left", 4.0)
                    except Exception:  # noqa: BLE001 - the page still opens; Run reports the error
                        outs = (None,) * 8 + ("",)
                    return (note, ed, mk, *outs, None, None, None, "")
                if demo.is_views:
                    try:
                        vs = on_views(p, 0, "", 45, 0)
                    except Exception:  # noqa: BLE001
                        vs = (None, None, None, "")
                    return (note, ed, mk, *(None,) * 8, "", *vs)
                return (note, ed, mk, *(None,) * 8, "", None, None, None, "")

            app.load(first, [path], [info, editor, mask, *run_outputs, support, view, held, v_notes])
    return app


def launch(
    ckpt: str | os.PathLike | None,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    **kwargs: Any,
):
    """Serve the demo on ``http://host:port`` (blocks until stopped; ``prevent_thread_lock=True`` returns)."""
    gr = require_gradio()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if ckpt:
        F.load_demo(ckpt)  # a bad folder fails here, with one line, before a server starts
    app = build_app(ckpt)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # fmt: skip
    app.launch(server_name=host, server_port=port, share=share, ssr_mode=False, theme=theme, **kwargs)
    return app
