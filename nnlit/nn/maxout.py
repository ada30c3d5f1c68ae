"""Maxout activation (Goodfellow et al. 2013, "Maxout Networks")."""

from __future__ import annotations

import torch
from torch import nn

from nnlit.validation import check_int


class Maxout(nn.Module):
    r"""Takes the maximum over groups of ``pieces`` consecutive features.

    A maxout unit computes :math:`h_j = \max_{i < k} z_{j k + i}`, so a layer of ``width`` maxout units needs a linear
    map to ``pieces * width`` features in front of it; :class:`nnlit.MLP` widens that Linear for you.

    Args:
        pieces: number of linear pieces ``k`` each unit takes the maximum of (at least 2).

    Raises:
        ValueError: if ``pieces`` is not an integer >= 2, or the input width is not a multiple of ``pieces``.

    Example::

        >>> m = Maxout(pieces=2)
        >>> m(torch.tensor([[1.0, -2.0, 0.5, 3.0]]))
        tensor([[1., 3.]])
    """

    def __init__(self, pieces: int = 2) -> None:
        super().__init__()
        check_int("pieces", pieces, minimum=2)
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = x.shape[-1]
        if width % self.pieces:
            raise ValueError(
                f"Maxout(pieces={self.pieces}) needs an input width divisible by {self.pieces}, got {width}"
            )
        return x.unflatten(-1, (width // self.pieces, self.pieces)).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"
