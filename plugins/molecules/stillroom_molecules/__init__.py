"""stillroom-molecules: slow molecule models distilled into screening-speed fingerprint students."""

__version__ = "0.1.0"
