"""The static HTML gallery: one page per model, per layer and per map.

- :mod:`.site`: the gallery writer (:func:`write_gallery`, :class:`Gallery`).
- :mod:`.class_page`: the page of class OIPs.
- :mod:`.worker`: a gallery drawn in a worker process while a zoo goes on.
"""

from .._lazy import lazy_exports

__all__ = ["write_gallery", "Gallery", "rebuild_gallery"]

__getattr__, __dir__ = lazy_exports(__name__, {"write_gallery": "site", "Gallery": "site", "rebuild_gallery": "site"})
