"""What makes nnlit's training fast, and the contract each piece keeps with Lightning.

Lightning's per-step machinery (hooks, loop bookkeeping, logging, profiler contexts) costs about as much as a small
MLP's whole forward and backward pass. These pieces take that cost away without changing what a fit computes; each is
checked against what Lightning itself does (tests under ``tests/speed/``):

- :mod:`~nnlit.speed.batch_groups`: nnlit's training loop, a group of minibatches per Lightning step, each with its
  own optimizer step. The same weights, learning rates and metrics as Lightning's automatic loop; what counts
  minibatches and what counts groups is listed there. :class:`~nnlit.speed.batch_groups.BatchGroupModule` is what the
  loop needs from a module; :func:`~nnlit.speed.batch_groups.lightning_loop_reason` the one place that chooses
  Lightning's loop instead.
- :mod:`~nnlit.speed.step_buffer`: metric inputs handed to torchmetrics every 32 steps, not every step; the same
  epoch values.
- :mod:`~nnlit.speed.precision`: Lightning's 32-bit precision plugin calling the step hooks only where someone
  overrides them; the same hooks, order and arguments (compared with Lightning's ``Precision`` bit for bit).
- :mod:`~nnlit.speed.profiler`: a no-op profiler cheaper per call than Lightning's default one; records nothing,
  like it.
- :mod:`~nnlit.speed.host_syncs`: where a GPU run makes the host wait (``bench/gpu.py``, the GPU test): the proof that
  training makes no host sync per step.

The package depends on torch, Lightning and :mod:`nnlit.data.loader` (the ``BatchGroup``) only; the modules
(:mod:`nnlit.models`) and the command use it. The private Lightning names it needs are in
:mod:`nnlit.lightning_internals`.
"""
