"""The search for OIPs: starting patterns, the pipeline around the ascent, and its results.

- :mod:`.starts`: map selections and random starting patterns on several length scales.
- :mod:`.pipeline`: :func:`find_oips`: precursor, ascent, restarts, rescue, measures.
- :mod:`.results`, :mod:`.status`, :mod:`.quality`: what a search returns and how it is judged.
"""

from .._lazy import lazy_exports

__all__ = ["find_oips", "retry_from", "file_sha256", "RESTART_KINDS", "OipResult", "MapOip", "Status", "parse_maps"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "find_oips": "pipeline", "retry_from": "pipeline", "file_sha256": "pipeline", "RESTART_KINDS": "pipeline",
    "OipResult": "results", "MapOip": "results", "Status": "status", "parse_maps": "starts",
})
