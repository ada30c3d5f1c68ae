"""The doctor's terminal report: how a weighed finding and a fix verified on top of others read."""

from nnlit.diagnosis import Finding
from nnlit.doctor import Diagnosis
from nnlit.doctor.report import render

LR = {"model.init_args.optimizer.init_args.lr": 0.01}
DECAY = {"model.init_args.optimizer.init_args.weight_decay": 0.0}


def test_a_weighed_info_a_stacked_fix_and_a_whole_fit_fix_read_as_what_was_measured():
    decay = Finding("weight_decay_too_high", "warning", "Adam adds weight_decay=1 …", where="optimizer", fix=DECAY)
    decay.verified = {"metric": "val/r2", "before": 0.264, "after": 0.424, "helped": True, "with": LR}
    dead = Finding("dead_relu", "info", "6/10 units …", where="network.act5", fix={"model.init_args.activation": "elu"})
    dead.verified = {"metric": "val/acc", "before": 0.75, "after": 0.745, "helped": True}
    dead.verified.update(gain=-0.004, needed=0.02, measured="probes, 2 seeds")
    late = Finding("overfitting", "warning", "With the other fixes …", where="val/loss", fix={"trainer.max_epochs": 13})
    late.verified = {"metric": "val/acc", "before": 0.944, "after": 0.972, "helped": True, "whole fit": True}
    text = render(Diagnosis([decay, late, dead], 3.0), "real/diabetes", [])
    assert (
        "   fix (val/r2 0.264 → 0.424, both runs with --model.init_args.optimizer.init_args.lr=0.01): "
        "--model.init_args.optimizer.init_args.weight_decay=0.0" in text
    )
    assert "   fix (val/acc 0.944 → 0.972, whole fits): --trainer.max_epochs=13" in text
    assert (
        "   info, not a warning: the best fix tried moved val/acc by -0.004 (probes, 2 seeds); a warning needs +0.020"
        in text
    )
    # the info's fix is shown on its finding but not in the command that applies every fix
    command = text.split("every verified fix at once:\n")[1]
    assert "weight_decay=0.0" in command and "max_epochs=13" in command and "activation" not in command
