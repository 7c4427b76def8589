"""The machine a benchmark runs on, in the words bench/README.md uses: cores, SIMD, AMX."""

from __future__ import annotations

import os


def describe_machine() -> str:
    """'N cores, AVX-512|AVX2|no AVX2, AMX yes|no' (from :func:`oipscope.ascent.precision.cpu_features`)."""
    from oipscope.ascent.precision import cpu_features

    features = cpu_features()
    simd = "AVX-512" if features["avx512"] else "AVX2" if features["avx2"] else "no AVX2"
    return f"{os.cpu_count()} cores, {simd}, AMX {'yes' if features['amx'] else 'no'}"
