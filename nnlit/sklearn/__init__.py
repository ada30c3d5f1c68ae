"""scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor`, nnlit's heads behind sklearn's API.

They stand in for ``sklearn.neural_network``'s estimators of the same names, with nnlit's parameter names
(``hidden`` for ``hidden_layer_sizes``, ``max_epochs`` for ``max_iter``, ``lr`` for ``learning_rate_init``,
``weight_decay`` for ``alpha``, roughly). They work in ``Pipeline``, ``ColumnTransformer``, ``GridSearchCV`` and
``cross_val_score``, pickle with ``pickle`` / ``joblib``, and take nnlit's callbacks (``DeadReLUCounter``,
``GradientSaturationMonitor``, …). Each fit is a Lightning fit of an nnlit head on a
:class:`~nnlit.TabularDataModule` built from ``X`` and ``y``, quiet (no bar, no logger files, no checkpoint files)
and on the CPU threads :class:`~nnlit.callbacks.Threads` chooses. Needs the ``sklearn`` extra (scikit-learn).
"""

from nnlit.sklearn.checks import SKLEARN_NAMES
from nnlit.sklearn.estimators import MLPClassifier, MLPRegressor

__all__ = ["SKLEARN_NAMES", "MLPClassifier", "MLPRegressor"]
