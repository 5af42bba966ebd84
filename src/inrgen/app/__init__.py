"""User-facing applications built on the library: the web demo (``inrgen web CKPT``).

``inrgen.app.functions`` holds the demo's pure functions (a checkpoint and an image in, images out) and
imports no web framework; ``inrgen.app.web`` is the gradio interface over them (the optional extra
``pip install 'inrgen[web]'``). Nothing is imported here, so ``import inrgen.app`` stays light.
"""

__all__: list[str] = []
