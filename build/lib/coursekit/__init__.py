"""coursekit: the library behind the course on automatic differentiation and optimization.

Modules, one per concept of the course:

- :mod:`coursekit.fd`  finite differences (forward, backward, central, complex step)
- :mod:`coursekit.zo`  zero-order gradient estimators and a gradient-descent driver
- :mod:`coursekit.mds` the multidimensional-scaling test problem
- :mod:`coursekit.plots` the figures the lectures show
"""

from coursekit import fd, mds, zo

__all__ = ["fd", "mds", "zo"]
__version__ = "0.1.0"
