"""Threads sets torch's CPU threads for a fit and restores them; choose_threads' rule, from given CPU counts."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from nnlit import MulticlassMLP, TabularDataModule
from nnlit.callbacks.threads import Threads, choose_threads, cpus_available, cpus_busy, step_work


class Seen(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.threads = torch.get_num_threads()


@pytest.mark.parametrize(("threads", "expected"), [(2, 2), ("auto", 1)])
def test_a_fit_runs_on_the_chosen_threads_and_gives_them_back(threads, expected, make_trainer):
    before = torch.get_num_threads()
    seen, policy = Seen(), Threads(threads)
    trainer = make_trainer(max_epochs=1, callbacks=[policy, seen])
    trainer.fit(MulticlassMLP(in_features=2, num_classes=2, hidden=[8]), datamodule=TabularDataModule(dataset="xor"))
    assert seen.threads == expected == policy.chosen  # a step of 64 rows of a tiny MLP is too small to share
    assert torch.get_num_threads() == before


def test_a_fit_that_raises_gives_the_threads_back(make_trainer):
    class Boom(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            raise RuntimeError("boom")

    torch.set_num_threads(2)
    try:
        trainer = make_trainer(max_epochs=1, callbacks=[Threads(1), Boom()])
        with pytest.raises(RuntimeError, match="boom"):
            trainer.fit(MulticlassMLP(in_features=2, num_classes=2), datamodule=TabularDataModule(dataset="xor"))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_a_quota_caps_the_threads_but_other_tenants_load_does_not_shrink_it():
    assert choose_threads(3e8, cpus=64, busy=40, quota=4)[0] == 4  # a 4-CPU container on a busy 64-CPU host
    assert choose_threads(3e8, cpus=64, busy=62, quota=4)[0] == 2  # the host's idle CPUs are fewer than the quota
    assert choose_threads(3e8, cpus=8, busy=0, processes=1)[0] == 8  # a rank bound to its own 8 CPUs


@pytest.mark.parametrize(("affinity", "node", "expected"), [(8, 32, 1), (32, 32, 4)])
def test_ranks_bound_to_cpus_of_their_own_are_not_divided_again(affinity, node, expected, monkeypatch):
    import nnlit.callbacks.threads as threads

    monkeypatch.setattr(threads, "_affinity", lambda: float(affinity))
    monkeypatch.setattr(threads.os, "cpu_count", lambda: node)
    assert threads.sharing_processes(4) == expected  # 4 ranks: bound to 8 CPUs each, or all sharing the 32


def test_the_rule():
    assert choose_threads(5e6, cpus=16, busy=0)[0] == 1
    assert choose_threads(3e8, cpus=16, busy=0)[0] == 16
    assert choose_threads(3e8, cpus=16, busy=15.6)[0] == 1
    assert choose_threads(3e8, cpus=16, busy=4, processes=4)[0] == 3  # 4 DDP processes share the node's 16
    assert choose_threads(None, cpus=2, busy=0)[0] == 2  # unknown work: taken as large


def test_work_and_cpus():
    model = torch.nn.Linear(10, 3)  # 33 parameters
    assert step_work(model, 100) == 6 * 33 * 100
    assert 1 <= cpus_available() <= (torch.get_num_threads() + 64)
    assert cpus_busy(0.01) >= 0.0


@pytest.mark.parametrize("threads", [0, -1, "all", True, 1.5])
def test_bad_threads(threads):
    with pytest.raises(ValueError, match=r"`threads` must be 'auto' or a positive integer"):
        Threads(threads)


@pytest.mark.parametrize(("flag", "expected"), [([], "auto"), (["--threads=2"], 2)])
def test_the_command_fits_with_threads(flag, expected, tmp_path):
    from nnlit.lightning_cli import make

    args = ["fit", "--model=nnlit.BinaryMLP", "--data=nnlit.TabularDataModule", "--data.dataset=xor"]
    args += ["--data.n_samples=100", "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--report=false"]
    args += [f"--trainer.default_root_dir={tmp_path}", "--trainer.max_epochs=1", *flag]
    policy = [c for c in make(args, run=True).trainer.callbacks if isinstance(c, Threads)]
    assert len(policy) == 1 and policy[0].threads == expected
    assert policy[0].chosen == (1 if expected == "auto" else 2)


def test_cgroup_quotas(tmp_path):
    from nnlit.callbacks.threads import _cgroup_quota

    membership = tmp_path / "cgroup"
    membership.write_text("0::/job/42\n")
    v2 = tmp_path / "v2"
    (v2 / "job/42").mkdir(parents=True)
    (v2 / "job/42/cpu.max").write_text("150000 100000\n")
    assert _cgroup_quota(v2, membership) == 1.5  # docker --cpus=1.5, a SLURM job's limit
    (v2 / "job/42/cpu.max").write_text("max 100000\n")
    assert _cgroup_quota(v2, membership) is None
    membership.write_text("4:cpu,cpuacct:/slurm/7\n1:memory:/slurm/7\n")
    v1 = tmp_path / "v1" / "cpu,cpuacct" / "slurm/7"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("400000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert _cgroup_quota(tmp_path / "v1", membership) == 4.0
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert _cgroup_quota(tmp_path / "v1", membership) is None
    assert _cgroup_quota(tmp_path / "nothing", tmp_path / "missing") is None
