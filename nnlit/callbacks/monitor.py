"""The base of nnlit's monitors: forward hooks on the model's layers, a per-epoch history saved with checkpoints, and
advice warned once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from typing_extensions import override

from nnlit.callbacks.training_hooks import CountsTrainingBatches
from nnlit.diagnosis.finding import Finding


class Monitor(CountsTrainingBatches):
    """What :class:`~nnlit.callbacks.DeadReLUCounter` and :class:`~nnlit.callbacks.GradientSaturationMonitor` share.

    - :attr:`history`: one entry per finished epoch, saved in checkpoints (a resumed fit keeps the whole history);
    - :attr:`advice`: the warnings given so far, for reports; :meth:`warn_once` gives each at most once per fit and
      key, also across a resume; :meth:`warn_finding` warns a :class:`~nnlit.diagnosis.Finding` of the diagnosis
      rules (the words ``nnlit doctor`` uses) and keeps it in :attr:`findings`;
    - :meth:`hook`: a forward hook on a layer, removed at teardown;
    - counting only training batches, from :class:`~nnlit.callbacks.training_hooks.CountsTrainingBatches`.
    """

    def __init__(self) -> None:
        super().__init__()
        #: one entry per finished epoch (each monitor documents its keys)
        self.history: list[dict[str, Any]] = []
        #: the warnings raised so far, with their advice (for reports)
        self.advice: list[str] = []
        #: the findings warned so far (the end-of-fit report ranks them with its own)
        self.findings: list[Finding] = []
        self._handles: list[RemovableHandle] = []
        self._warned: set[str] = set()

    def hook(self, module: nn.Module, hook: Callable[[nn.Module, Any, Tensor], None]) -> None:
        """Registers a forward hook on ``module`` until teardown."""
        self._handles.append(module.register_forward_hook(hook))

    def warn_once(self, key: str, message: str) -> None:
        """Warns ``message`` and keeps it in :attr:`advice`, unless a warning of ``key`` was given before."""
        if key in self._warned:
            return
        self._warned.add(key)
        self.advice.append(message)
        rank_zero_warn(message)

    def warn_finding(self, key: str, finding: Finding) -> None:
        """Warns ``finding``'s message once per ``key`` (as :meth:`warn_once`) and keeps the finding."""
        if key not in self._warned:
            self.findings.append(finding)
        self.warn_once(key, finding.message)

    def warned(self, key: str) -> bool:
        """Whether a warning of ``key`` was given."""
        return key in self._warned

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "warned": sorted(self._warned), "advice": self.advice}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict["history"])
        self._warned = set(state_dict["warned"])
        self.advice = list(state_dict.get("advice", []))


__all__ = ["Monitor"]
