"""Every threshold the diagnosis rules hold measurements against, in one place, each with its source.

The anchors are published rules: AUTOTRAINER (Zhang et al., ICSE 2021, its ``utils/monitor.py``), SageMaker Debugger's
built-in rules, TheDeepChecker (Ben Braiek & Khomh, TOSEM 2023), Karpathy's "A recipe for training neural networks",
and the data checks of deepchecks / cleanlab. Where nnlit departs from an anchor the comment says why; the values were
then checked on the development cases of ``bench/doctor.py`` (never on its held-out cases).
"""

from __future__ import annotations

# ---------------------------------------------------------------- gradients (AUTOTRAINER)
#: vanishing: first / last layer gradient-norm ratio at or below this (AUTOTRAINER: 1e-3)
VANISHING_RATIO = 1e-3
#: exploding: first / last layer gradient-norm ratio at or above this (AUTOTRAINER: 70)
EXPLODING_RATIO = 70.0

# ---------------------------------------------------------------- units
#: a layer is dying when at least this share of its units never fired in an epoch (SageMaker Debugger: a unit active
#: < 1 % of the time in > 50 % of a layer; AUTOTRAINER: >= 70 % zero gradients). nnlit's dead unit is stricter (0 for
#: every sample, Lu et al. 2020), so the SageMaker share is kept.
DEAD_LAYER_FRACTION = 0.5
#: a sigmoid / tanh layer is saturated when more than this share of its outputs are (derivative below 5.9 % of its
#: maximum; SageMaker Debugger's tanh ±9.5 / sigmoid -23, 17 pre-activation limits are far stricter and fire late)
SATURATED_LAYER_FRACTION = 0.5
#: units of a layer are symmetric (a constant initialisation) when the spread of their weight rows is at most this
#: fraction of the rows' mean size
SYMMETRIC_SPREAD = 1e-6

# ---------------------------------------------------------------- update / weight ratio (learning rate)
#: a layer's mean ‖ΔW‖ / ‖W‖ per step below this: the learning rate is too low (TheDeepChecker: 1e-4; the issue's
#: anchor range: about 1e-5 … 1e-1; SageMaker: 1e-8 … 10). 1e-5 keeps Adam at 1e-4 on a large table healthy.
UPDATE_RATIO_LOW = 1e-5
#: above this: the learning rate is too high (TheDeepChecker: 1e-1; higher here because Adam moves every weight by about
#: lr per step, so a small healthy net at Adam's lr 0.05 already reads 0.1 to 0.2)
UPDATE_RATIO_HIGH = 0.3

# ---------------------------------------------------------------- loss
#: the first loss is bad when it exceeds the loss of predicting the prior by this factor (TheDeepChecker, Karpathy:
#: the initial loss should be -log(1/C) for C balanced classes) …
INITIAL_LOSS_FACTOR = 3.0
#: … and by at least this much in absolute terms (a prior loss near 0 makes any factor meaningless)
INITIAL_LOSS_MARGIN = 1.0
#: the loss diverged when its last value exceeds its first (or the prior's loss) by this factor
DIVERGENCE_FACTOR = 1.5
#: the loss stalled when the fit removed less than this share of the way from the first loss to 0 … (AUTOTRAINER's slow
#: convergence: best epoch-to-epoch gain < 0.01, made relative: a loss of 1e-3 moves by less than 0.01 when healthy)
STALL_FRACTION = 0.02
#: the overfit-one-batch probe fails when the loss of a few dozen rows ends above this share of its start
#: (TheDeepChecker: <= 5 % wrong on a batch of 16 after 1000 steps)
OVERFIT_BATCH_FRACTION = 0.5

# ---------------------------------------------------------------- train / validation
#: overfitting: validation loss rose this much above its best while the training loss kept falling (UMLAUT flagged one
#: rising validation loss on 68 of 78 healthy models: a size and a trend are required, not one uptick). 0.15 flagged
#: the healthy wine config (36 validation rows) on the benchmark's development cases.
OVERFIT_RISE = 0.3
#: … over at least this many epochs after the best one
OVERFIT_EPOCHS = 3
#: … and the last validation loss exceeds the last training loss by this share of the validation loss
OVERFIT_GAP = 0.2
#: a score is at chance when (score - chance) / (1 - chance) is below this (accuracy; R² against 0)
CHANCE_MARGIN = 0.1
#: training fits while validation is at chance: the training score is this far above chance (same scale)
FITS_MARGIN = 0.3
#: a reference model (logistic / ridge regression) beats the MLP by more than this (accuracy points; R² points)
REFERENCE_MARGIN = 0.03

# ---------------------------------------------------------------- the table (deepchecks, cleanlab, SageMaker)
#: class ratio (largest / smallest) above this is an imbalance (SageMaker Debugger's ClassImbalance: 10)
CLASS_RATIO = 10.0
#: a single feature predicting the target with a normalised score above this is a leak (deepchecks: PPS > 0.8; higher
#: here, since one honest feature of a small table can score 0.9: iris's petal width does)
LEAKAGE_SCORE = 0.98
#: a column is ID-like when this share of its values are distinct and they are integers or follow the row order
ID_UNIQUE_FRACTION = 0.99
#: ... following the row order: |Spearman correlation with the row number| at least this
ID_ORDER_CORRELATION = 0.99
#: duplicate rows above this share of the table
DUPLICATE_FRACTION = 0.05
#: rows with the same features and different labels above this share of the table
CONFLICT_FRACTION = 0.02
#: a column missing more than this share of its values
MISSING_FRACTION = 0.3
#: unscaled: with standardisation off, a feature whose |mean| or std exceeds this many units (UMLAUT's [-1, 1] rule
#: flagged every healthy CIFAR-10 model; the scale is judged per feature against the standardised range)
UNSCALED_LIMIT = 10.0
#: too few rows: fewer training rows than this …
MIN_ROWS = 50
#: … or fewer than one row per this many parameters
PARAMETERS_PER_ROW = 100.0

# ---------------------------------------------------------------- the config, statically
#: a stack of at least this many sigmoid / tanh layers without normalisation starves the first layers of gradient
SATURATING_DEPTH = 4
#: dropout at or above this on hidden layers no wider than NARROW_WIDTH
HIGH_DROPOUT = 0.5
NARROW_WIDTH = 32
#: learning rates far outside an optimizer's usual range, by optimizer family: (too low, too high)
LR_RANGE: dict[str, tuple[float, float]] = {
    "sgd": (1e-5, 10.0),
    "adaptive": (1e-6, 0.5),  # Adam, AdamW, RMSprop, Adamax, NAdam, RAdam
    "adagrad": (1e-5, 5.0),
}

#: a weight decay added to the gradient (L2; Adam, SGD, RMSprop …, not AdamW) above this is far too strong: usual L2
#: strengths are 1e-5 to 1e-3 (5e-4 in the SGD recipes of ResNet and its successors; PyTorch's Adam default is 0);
#: AdamW's decoupled 0.01 to 1 is another quantity
COUPLED_DECAY = 0.1

# ---------------------------------------------------------------- verifying a fix
#: a fix helps when the validation metric gains at least this much (accuracy points; R² points) …
FIX_GAIN = 0.01
#: … or cures its measurement while the metric loses no more than this
FIX_TOLERANCE = 0.005
#: a warning whose best verified fix gains less than this (accuracy points; R² points) becomes an info: the run was not
#: "clearly worse than it could be" (UMLAUT's and DeepDiagnosis' false alarms are symptoms that cost nothing)
CLEAR_GAIN = 0.02
#: … and, for accuracy, less than this many validation rows (on small tables one row is several points). A gain under
#: twice the bar is measured again with a second seed (one seed's gain of one row is noise as often as not)
CLEAR_ROWS = 1
