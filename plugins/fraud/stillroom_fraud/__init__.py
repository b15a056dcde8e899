"""stillroom-fraud: heavy tabular fraud teachers distilled into fast LightGBM students."""

__version__ = "0.1.0"
