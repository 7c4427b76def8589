"""The ascent: how an image climbs a map's activation.

- :mod:`.objective`: what is maximized (objectives that combine with arithmetic).
- :mod:`.parametrization`, :mod:`.transforms`, :mod:`.warmup`: how the image is described,
  jittered and woken while it climbs.
- :mod:`.pixels`: the pixel loop (the series' method, batched in one compiled graph).
- :mod:`.parameters`: the parameter loop (readable OIPs: parametrized images, transforms, Adam).
- :mod:`.own_map`, :mod:`.pooling`, :mod:`.traces`: the fast paths (each element's own map, a
  faster pooling gradient, one trace per architecture).
"""

from .._lazy import lazy_exports

__all__ = ["Objective", "channel", "parse_objective", "ascend", "render"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Objective": "objective", "channel": "objective", "parse_objective": "objective",
    "ascend": "pixels", "render": "parameters",
})
