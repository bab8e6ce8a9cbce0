"""envctl: declarative, reproducible development environments on the OCI stack."""

__version__ = "0.1.0"
__all__ = ["__version__"]
