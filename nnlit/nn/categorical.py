"""Categorical input columns inside the network: one-hot for few categories, learned embeddings for many."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from nnlit.validation import check_int

#: code of the category that training did not see (and of anything out of range): it adds nothing to the input
UNKNOWN = 0


def embedding_size(num_categories: int) -> int:
    """The default embedding width of a column of ``num_categories`` codes: ``min(600, round(1.6 · n^0.56))``, the
    rule of thumb fastai derived from its tabular experiments (``emb_sz_rule``).

    Example::

        >>> [embedding_size(n) for n in (20, 100, 10_000)]
        [9, 21, 278]
    """
    return min(600, round(1.6 * num_categories**0.56))


class CategoricalEncoder(nn.Module):
    """Turns the category codes in the last columns of the input into one-hot or embedding columns; the numeric
    columns before them pass through unchanged.

    The input is one float matrix: ``in_features - len(categories)`` numeric columns, then one column of integer codes
    per categorical feature. Code ``0`` of every column is the unknown category (a value training did not see); codes
    ``1 … n - 1`` are the training categories. A column of at most ``max_one_hot`` codes becomes ``n - 1`` one-hot
    columns; a wider one a learned embedding of ``embedding_dim`` (default :func:`embedding_size`). The unknown code
    becomes zeros either way (the embedding's ``padding_idx``): an unseen category adds nothing to the first layer
    rather than a vector training never tuned. A code that is out of range or not an integer (NaN) counts as unknown,
    so no input crashes the lookup.

    Keeping the codes in the same float matrix as the numbers keeps the model's input a single tensor: loaders, DDP,
    ONNX and TorchScript export treat it like any numeric table.

    Args:
        in_features: columns of the input, the categorical ones included.
        categories: the number of codes of each categorical column (unknown included), in column order.
        max_one_hot: the most codes a column may have to be one-hot encoded; more get an embedding. ``0`` embeds
            every column.
        embedding_dim: the width of every embedding; default :func:`embedding_size` of each column's codes.

    Raises:
        ValueError: for more categorical columns than input columns, a column of fewer than 2 codes, a negative
            ``max_one_hot`` or a ``embedding_dim`` below 1.

    Example::

        >>> encoder = CategoricalEncoder(in_features=3, categories=[3, 40])  # 1 number, then 2 category codes
        >>> encoder
        CategoricalEncoder(numeric=1, one_hot=[3], embedded=[40 -> 13], out_features=16)
        >>> x = torch.tensor([[0.5, 2.0, 7.0], [-1.0, 0.0, 99.0]])  # row 2: unknown, out of range
        >>> y = encoder(x).detach()
        >>> y[:, :3]
        tensor([[ 0.5000,  0.0000,  1.0000],
                [-1.0000,  0.0000,  0.0000]])
        >>> y[1, 3:].abs().sum()  # the unknown code embeds as zeros
        tensor(0.)
    """

    one_hot_index: Tensor
    one_hot_offset: Tensor
    one_hot_size: Tensor
    embed_index: Tensor
    embed_size: Tensor

    def __init__(
        self,
        in_features: int,
        categories: Sequence[int],
        max_one_hot: int = 16,
        embedding_dim: int | None = None,
    ) -> None:
        super().__init__()
        categories = [int(n) for n in categories]
        if len(categories) > in_features:
            raise ValueError(f"{len(categories)} categorical columns do not fit in in_features={in_features}")
        bad = [n for n in categories if n < 2]
        if bad:
            raise ValueError(f"Each categorical column needs >= 2 codes (unknown + one category), got {categories}")
        check_int("max_one_hot", max_one_hot, minimum=0)
        check_int("embedding_dim", embedding_dim, allow_none=True)
        self.in_features = in_features
        self.categories = categories
        self.max_one_hot = max_one_hot
        self.num_numeric = in_features - len(categories)
        one_hot = [j for j, n in enumerate(categories) if n <= max_one_hot]
        embedded = [j for j, n in enumerate(categories) if n > max_one_hot]
        widths = [categories[j] - 1 for j in one_hot]  # the unknown code has no column: it is all zeros
        offsets = [sum(widths[:i]) for i in range(len(widths))]
        self.register_buffer("one_hot_index", torch.tensor(one_hot, dtype=torch.long), persistent=False)
        self.register_buffer("one_hot_offset", torch.tensor(offsets, dtype=torch.long), persistent=False)
        self.register_buffer("one_hot_size", torch.tensor([categories[j] for j in one_hot]), persistent=False)
        self.register_buffer("embed_index", torch.tensor(embedded, dtype=torch.long), persistent=False)
        self.register_buffer("embed_size", torch.tensor([categories[j] for j in embedded]), persistent=False)
        self.one_hot_width = sum(widths)
        dims = [embedding_dim or embedding_size(categories[j]) for j in embedded]
        self.embeddings = nn.ModuleList(
            nn.Embedding(categories[j], dim, padding_idx=UNKNOWN) for j, dim in zip(embedded, dims)
        )
        self.out_features = self.num_numeric + self.one_hot_width + sum(dims)

    def forward(self, x: Tensor) -> Tensor:
        numeric = x[:, : self.num_numeric]
        codes = x[:, self.num_numeric :]
        parts = [numeric]
        if self.one_hot_width > 0:
            parts.append(self._one_hot(codes.index_select(1, self.one_hot_index), x.dtype))
        if len(self.embeddings) > 0:
            embed_codes = _valid_codes(codes.index_select(1, self.embed_index), self.embed_size)
            for i, embedding in enumerate(self.embeddings):
                parts.append(embedding(embed_codes[:, i]))
        return torch.cat(parts, dim=1)

    def _one_hot(self, codes: Tensor, dtype: torch.dtype) -> Tensor:
        codes = _valid_codes(codes, self.one_hot_size)
        known = codes != 0  # UNKNOWN (a literal: TorchScript reads no globals)
        # column of code c (>= 1) of one-hot column i: offset_i + c - 1; an unknown code writes 0 at its column's start
        position = self.one_hot_offset + torch.where(known, codes - 1, torch.zeros_like(codes))
        out = torch.zeros(codes.shape[0], self.one_hot_width, dtype=dtype, device=codes.device)
        return out.scatter(1, position, known.to(dtype))

    def extra_repr(self) -> str:
        one_hot = [self.categories[j] for j in self.one_hot_index.tolist()]
        embedded = [f"{e.num_embeddings} -> {e.embedding_dim}" for e in self.embeddings]
        return (
            f"numeric={self.num_numeric}, one_hot={one_hot}, embedded=[{', '.join(embedded)}], "
            f"out_features={self.out_features}"
        )

    def __repr__(self) -> str:  # one line: the embeddings are in extra_repr already
        return f"{type(self).__name__}({self.extra_repr()})"


def _valid_codes(codes: Tensor, sizes: Tensor) -> Tensor:
    """Float codes as integers; anything outside ``[0, size)`` of its column, fractional or NaN, as unknown."""
    whole = codes.floor() == codes  # False for NaN and fractions
    inside = (codes >= 0) & (codes < sizes.to(codes.dtype)) & whole
    return torch.where(inside, codes, torch.zeros_like(codes)).long()
