"""The cluster config without a cluster: SLURM's environment variables set as srun would set them."""

import shutil
import subprocess
from pathlib import Path

import pytest
from lightning.fabric.plugins.environments import SLURMEnvironment

from nnlit.cli import build

ROOT = Path(__file__).resolve().parents[1]
SBATCH = ROOT / "configs" / "cluster" / "train.sbatch"

# task 5 of 8: the second GPU of the second node
SLURM_TASK = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "nnlit",
    "SLURM_NODELIST": "node[1-2]",
    "SLURM_NTASKS": "8",
    "SLURM_NTASKS_PER_NODE": "4",
    "SLURM_PROCID": "5",
    "SLURM_LOCALID": "1",
    "SLURM_NODEID": "1",
}


def test_cluster_config_resolves_to_slurm_ranks(monkeypatch, tmp_path):
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    # building a Trainer as rank 5 sets this process-wide flag, which would silence rank-zero warnings in later tests
    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)
    monkeypatch.chdir(tmp_path)
    for key, value in SLURM_TASK.items():
        monkeypatch.setenv(key, value)
    args = [
        "--config",
        str(ROOT / "configs/cluster/ddp.yaml"),
        "--trainer.accelerator=cpu",  # no GPU here; the rest of the file is as on the cluster
        "--trainer.logger.init_args.version=4242",  # what train.sbatch passes
    ]
    cli = build(args)
    trainer = cli.trainer
    assert isinstance(trainer.strategy.cluster_environment, SLURMEnvironment)
    assert (trainer.global_rank, trainer.local_rank, trainer.node_rank, trainer.world_size) == (5, 1, 1, 8)
    assert trainer.num_nodes == 2 and trainer.num_devices == 4
    assert Path(trainer.logger.log_dir) == Path("runs/cluster/lightning_logs/version_4242")


def test_sbatch_matches_the_config():
    text = SBATCH.read_text()
    assert "--nodes=2" in text and "--ntasks-per-node=4" in text  # = num_nodes, devices in ddp.yaml
    assert "--signal=SIGUSR1@90" in text and "--requeue" in text
    assert "--ckpt_path last" in text and "hpc_ckpt_" in text
    # the run's folder: the job id, or the run named to continue it
    assert 'RUN="${NNLIT_RUN:-${SLURM_JOB_ID}}"' in text and '--trainer.logger.init_args.version="${RUN}"' in text


def test_the_cluster_config_names_its_folder_as_the_sbatch_script_makes_it():
    text = (ROOT / "configs" / "cluster" / "ddp.yaml").read_text()
    assert "lightning_logs/version_<job id>/checkpoints/" in text and "nnlit.callbacks.SLURMRequeue" in text


@pytest.mark.parametrize("script", [SBATCH, ROOT / "configs" / "cluster" / "tune.sbatch"])
def test_sbatch_script_parses(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    subprocess.run(["shellcheck", str(script)], check=True)
