import numpy as np
import pytest
import torch

from nnlit.data import ShardedIndexSampler, TensorBatchLoader


def epoch_rows(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return torch.cat([batch[1] for batch in loader]).tolist()


def make_loader(n=23, batch_size=5, **sampler_kwargs):
    x = torch.arange(n, dtype=torch.float32).view(n, 1)
    rows = torch.arange(n)
    sampler = ShardedIndexSampler(n, **sampler_kwargs)
    return TensorBatchLoader([x, rows], batch_size, sampler=sampler)


def test_every_row_once_per_epoch_in_a_new_order():
    loader = make_loader(shuffle=True, seed=3)
    first, second = epoch_rows(loader, 0), epoch_rows(loader, 1)
    assert sorted(first) == sorted(second) == list(range(23))
    assert first != second


def test_same_seed_and_epoch_same_order():
    assert epoch_rows(make_loader(shuffle=True, seed=3), 4) == epoch_rows(make_loader(shuffle=True, seed=3), 4)
    assert epoch_rows(make_loader(shuffle=True, seed=3), 4) != epoch_rows(make_loader(shuffle=True, seed=4), 4)


def test_features_and_targets_stay_aligned():
    loader = make_loader(shuffle=True)
    for x, rows in loader:
        assert torch.equal(x.view(-1).long(), rows)


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_shards_cover_every_row_and_are_equal_when_padded(world_size):
    shards = [epoch_rows(make_loader(shuffle=True, rank=r, world_size=world_size), 2) for r in range(world_size)]
    assert len({len(s) for s in shards}) == 1  # same number of steps on every rank
    covered = [row for shard in shards for row in shard]
    assert set(covered) == set(range(23))
    assert len(covered) - 23 == (-23) % world_size  # only the padding repeats rows


def test_unpadded_shards_partition_the_rows():
    shards = [epoch_rows(make_loader(shuffle=False, rank=r, world_size=2, pad=False), 0) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(23))
    assert not set(shards[0]) & set(shards[1])


@pytest.mark.parametrize(("drop_last", "sizes"), [(False, [5, 5, 5, 5, 3]), (True, [5, 5, 5, 5])])
def test_batch_sizes_and_len(drop_last, sizes):
    loader = TensorBatchLoader([torch.zeros(23, 2)], 5, drop_last=drop_last)
    assert [len(b[0]) for b in loader] == sizes
    assert len(loader) == len(sizes)


@pytest.mark.parametrize("layout", ["row-major", "column-major"])
@pytest.mark.parametrize("group", [1, 3])
def test_shuffled_rows_of_a_split_are_gathered_as_indexing_would(layout, group):
    x = torch.randn(40, 3) if layout == "row-major" else torch.randn(3, 40).T
    y = torch.arange(40) * 10
    rows = torch.arange(1, 40, 2)  # a split: the odd rows of the table
    sampler = ShardedIndexSampler(len(rows), shuffle=True, seed=1)
    loader = TensorBatchLoader([x, y], 4, sampler=sampler, rows=rows, group=group)
    order = rows[sampler.indices()]
    batches = [b.tensors if group > 1 else b for b in loader]
    assert torch.equal(torch.cat([b[0] for b in batches]), x[order])
    assert torch.equal(torch.cat([b[1] for b in batches]), y[order])


def test_rows_given_as_a_numpy_array():
    x = torch.arange(10.0).view(5, 2)
    loader = TensorBatchLoader([x], 2, rows=np.array([4, 0, 2]))
    assert torch.equal(torch.cat([b[0] for b in loader]), x[[4, 0, 2]])


def test_unshuffled_single_process_yields_views():
    x = torch.zeros(10, 2)
    batch = next(iter(TensorBatchLoader([x], 4)))
    assert batch[0].data_ptr() == x.data_ptr()


def test_errors():
    with pytest.raises(ValueError, match="same number of rows"):
        TensorBatchLoader([torch.zeros(3), torch.zeros(4)], 2)
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer, got 0"):
        TensorBatchLoader([torch.zeros(3)], 0)
    with pytest.raises(ValueError, match=r"`rank` must be in \[0, world_size=2\), got 2"):
        ShardedIndexSampler(5, rank=2, world_size=2)


def test_lightning_sets_the_epoch(make_trainer):
    """The fit loop calls loader.sampler.set_epoch(epoch): each epoch gets its own permutation."""
    import lightning as L

    seen = []

    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)

        def training_step(self, batch, batch_idx):
            seen.append((self.current_epoch, batch[1].tolist()))
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    loader = make_loader(n=8, batch_size=8, shuffle=True, seed=0)
    make_trainer(max_epochs=2).fit(Recorder(), train_dataloaders=loader)
    expected = [torch.randperm(8, generator=torch.Generator().manual_seed(e)).tolist() for e in (0, 1)]
    assert seen == [(0, expected[0]), (1, expected[1])]


def test_fewer_rows_than_ranks_still_gives_every_rank_its_steps():
    shards = [ShardedIndexSampler(1, shuffle=False, rank=r, world_size=4).indices().tolist() for r in range(4)]
    assert shards == [[0], [0], [0], [0]]
    assert all(len(ShardedIndexSampler(3, rank=r, world_size=8)) == len(s) for r, s in enumerate([[0]] * 8))
    assert [len(ShardedIndexSampler(3, rank=r, world_size=8).indices()) for r in range(8)] == [1] * 8
