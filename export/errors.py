"""Export's exception hierarchy: every failure the CLI reports as a message."""


class ExportError(RuntimeError):
    """The export was asked for something impossible, or an engine failed its checks."""


class ParityError(ExportError):
    """An engine's outputs differ from the PyTorch model beyond the tolerance."""
