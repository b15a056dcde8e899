"""stillroom-medical: medical-imaging CNN teachers distilled into CPU-sized students."""

__version__ = "0.1.0"
