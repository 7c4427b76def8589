"""Pictures of OIPs: notebook figures, the map card, and the pieces they are drawn with.

- :mod:`.plot`: notebook figures (OIP grids, evolution, curves, dataset examples, the map card).
- :mod:`.card`: the map card, laid out once and repainted per map.
- :mod:`.crops`: dataset examples cropped to the receptive field of their strongest unit.
- :mod:`.patterns`, :mod:`.profiles`: activation patterns of images and by class.
- :mod:`.tiles`, :mod:`.captions`, :mod:`.parts`, :mod:`.paint`, :mod:`.text`, :mod:`.png`: display tiles,
  words, shared figure pieces, painting into pixels, text glyphs and fast PNG files.
"""

__all__: list[str] = []
