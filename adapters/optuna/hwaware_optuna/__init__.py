"""hwaware-plugins adapter for optuna."""

__all__: list[str] = []
