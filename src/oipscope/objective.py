"""What an ascent maximizes: the mean activation of one feature map per image.

The one definition of the objective, used by the compiled ascent loop (with its
gradient), by the precursor's scoring of candidate starts and by the final
activation of every OIP (forward only).
"""

from __future__ import annotations

__all__ = ["map_means"]


def map_means(features, map_indices):
    """Each element's mean over the positions of its own map.

    Args:
        features: a layer's output, (B, h, w, M) tensor.
        map_indices: (B,) int32 tensor, the map each element climbs.

    Returns:
        (B,) tensor.
    """
    import tensorflow as tf

    selected = tf.gather(features, map_indices, axis=3, batch_dims=1)  # (B, h, w)
    return tf.reduce_mean(selected, axis=[1, 2])
