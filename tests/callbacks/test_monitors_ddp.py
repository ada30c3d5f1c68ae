import json
from pathlib import Path

import pytest
from helpers import run_python

pytestmark = pytest.mark.integration  # every test here starts processes

SCRIPT = Path(__file__).with_name("ddp_monitors_run.py")


def run(devices: int, activation: str, tmp_path: Path) -> dict[str, float]:
    result = run_python(SCRIPT, devices, activation, timeout=180, cwd=tmp_path)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_two_processes_report_what_one_process_does(activation, tmp_path):
    single, ddp = run(1, activation, tmp_path), run(2, activation, tmp_path)
    keys = [k for k in single if k.startswith(("dead_relu/", "saturation/", "grad_norm/"))]
    assert keys and set(keys) <= set(ddp)
    if activation == "relu":
        assert 0 < single["dead_relu/total"] < 1  # the comparison is not between zeros
    else:
        assert single["saturation/network.act1"] > 0
    for key in keys:
        assert ddp[key] == pytest.approx(single[key], rel=1e-5), key


@pytest.mark.slow
def test_a_layer_that_runs_on_one_rank_only_does_not_hang(tmp_path):
    script = Path(__file__).parents[1] / "scripts" / "ddp_uneven_layers.py"
    result = run_python(script, timeout=180, cwd=tmp_path)
    reported = result.stdout.strip().splitlines()[-1]
    assert "dead_relu/extra_relu" in reported and "saturation/extra_tanh" in reported  # rank 0's layers reported
