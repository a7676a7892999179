"""hwaware-plugins adapter for hyperopt."""

__all__: list[str] = []
