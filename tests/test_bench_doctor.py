"""``bench/doctor.py``'s cases: enough faulty cases over enough tables, every seed lesson in failure, enough healthy
configs, both splits, kinds from the vocabulary; a table change is written as a CSV the config can read."""

from __future__ import annotations

import pytest
from helpers import ROOT, load_script

from nnlit.diagnosis import KINDS

bench = load_script("bench/doctor.py", "bench_doctor")


def test_the_cases_cover_what_the_benchmark_promises():
    faulty, healthy = bench.load("all", None, None)
    assert len(faulty) >= 40 and len(healthy) >= 15
    assert len({c["config"] for c in faulty if c["config"].startswith(("real/", "heads/", "quickstart"))}) >= 5
    assert all(set(c["expect"]) <= set(KINDS) for c in faulty)
    lessons = {c["config"] for c in faulty + healthy if c["config"].startswith("demos/")}
    shipped = {f"demos/{p.stem}" for p in (ROOT / "configs" / "demos").glob("*.yaml")}
    assert shipped - lessons == {"demos/finetune"}  # it needs a pretrained run's checkpoint first
    for cases in (faulty, healthy):
        assert {c["split"] for c in cases} == {"dev", "held_out"}


def test_a_table_change_becomes_a_csv_the_config_reads(tmp_path):
    from nnlit.cli import build

    case = {"name": "iris_id_column", "config": "real/iris", "overrides": [], "table": "add_id_column"}
    config, overrides = bench.materialise(case, tmp_path)
    cli = build(["--config", config, *overrides, "--trainer.logger=false"])
    assert cli.datamodule.table.numeric[0] == "row_id" and len(cli.datamodule.table.y) == 150
    with pytest.raises(ValueError, match="Unknown table change 'sort_rows': shuffle_labels or add_id_column"):
        bench.materialise({**case, "table": "sort_rows"}, tmp_path)


def test_a_fault_that_does_not_hurt_counts_as_a_healthy_config():
    hurt = {"expect": ["lr_too_high"], "hurts": True, "found": ["lr_too_high"], "lr_finder": []}
    harmless = {"expect": ["dead_relu"], "hurts": False, "found": ["dead_relu"], "lr_finder": ["lr_too_high"]}
    healthy = {"expect": [], "found": [], "lr_finder": []}
    doctor = bench.summarise([hurt, harmless, healthy], "found", "doctor")
    header = "== doctor: 1 faulty cases (that hurt), 2 healthy configs (1 of them faulty cases that do not hurt)"
    assert doctor[0] == header
    assert "false alarms 1/2 (50%)" in doctor
    assert any(line.split() == ["dead_relu", "0.00", "-", "1", "0"] for line in doctor)  # named on it: not expected
    finder = bench.summarise([hurt, harmless, healthy], "lr_finder", "finder")
    assert "false alarms 1/2 (50%)" in finder
