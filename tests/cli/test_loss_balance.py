"""`python -m tf_faceedit.loss_balance`: the loss-balance readout of a preset, and its one-line errors."""

from tf_faceedit.cli import loss_balance as cli


def test_prints_every_generator_term_with_its_gradient_share(capsys):
    rc = cli.main(["--config=pggan_completion_quick", "--stage=3", "--batch_size=4", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "stage 32x32" in out
    shares = {}
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0].startswith("g_"):
            shares[cells[0]] = float(cells[-1])
    assert {"g_adv", "g_attr", "g_rec", "g_bdy"} <= set(shares)
    assert abs(sum(shares.values()) - 1.0) < 0.01


def test_a_method_without_a_readout_is_one_line(capsys):
    rc = cli.main(["--config=sagan_quick", "--batch_size=2", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "no loss-balance readout" in err and "Traceback" not in err


def test_a_stage_outside_the_schedule_is_one_line(capsys):
    rc = cli.main(["--config=pggan_completion_quick", "--stage=9", "--batch_size=2", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--stage 9" in err
