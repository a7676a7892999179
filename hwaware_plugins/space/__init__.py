"""Search spaces: distributions, the space tree, subspaces and complexity rules.

- distributions: :class:`Float`, :class:`Int`, :class:`Normal`,
  :class:`Categorical`, :class:`Constant`;
- the tree: :class:`Param`, :class:`Group`, :class:`Choice`, :class:`Optional`,
  built directly or with :func:`from_dict`;
- subspaces: :func:`count_subspaces`, :func:`enumerate_subspaces` (SHADHO's
  splitting rule, capped), :class:`Subspace`;
- complexity: :func:`subspace_complexity`, :func:`distribution_complexity`, the
  rule objects :class:`HwawareComplexity` and :class:`ShadhoComplexity`, and
  :func:`subspace_infos` to hand subspaces to a scheduler.
"""

from hwaware_plugins.space._complexity import (
    ComplexityRule,
    HwawareComplexity,
    ShadhoComplexity,
    distribution_complexity,
    get_rule,
    subspace_complexity,
)
from hwaware_plugins.space._distributions import (
    Categorical,
    Constant,
    Distribution,
    Float,
    Int,
    Normal,
)
from hwaware_plugins.space._infos import subspace_infos
from hwaware_plugins.space._subspaces import Subspace, count_subspaces, enumerate_subspaces
from hwaware_plugins.space._tree import (
    Choice,
    Group,
    Node,
    Optional,
    Param,
    flatten,
    from_dict,
    validate_space,
)

__all__ = [
    "Categorical",
    "Choice",
    "ComplexityRule",
    "Constant",
    "Distribution",
    "Float",
    "Group",
    "HwawareComplexity",
    "Int",
    "Node",
    "Normal",
    "Optional",
    "Param",
    "ShadhoComplexity",
    "Subspace",
    "count_subspaces",
    "distribution_complexity",
    "enumerate_subspaces",
    "flatten",
    "from_dict",
    "get_rule",
    "subspace_complexity",
    "subspace_infos",
    "validate_space",
]
