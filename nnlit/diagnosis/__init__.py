"""The diagnosis rules: small pure functions over measurements (plain numbers, arrays) that return
:class:`Finding` objects, with every threshold in :mod:`nnlit.diagnosis.thresholds`.

The monitors' warnings, the end-of-fit report and ``nnlit doctor`` use the same rules and the same words. This package
imports nothing from nnlit's models or command (callbacks may import it).
"""

from nnlit.diagnosis.finding import KINDS, SEVERITIES, Finding, healthy, ranked

__all__ = ["KINDS", "SEVERITIES", "Finding", "healthy", "ranked"]
