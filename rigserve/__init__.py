"""rigserve: multimodal human-sensing models that keep working when sensors drop out."""

__version__ = "0.1.0"
