"""``fengkong risk`` commands end to end, and the Dask whole-book path."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from fengkong.analytics.book import book_var_es
from fengkong.analytics.distributed import book_var_es_dask
from fengkong.cli import app

from .conftest import EXAMPLES

runner = CliRunner()
PORTFOLIO = str(EXAMPLES / "portfolio.yaml")


def invoke(*args: str):
    return runner.invoke(app, ["risk", *args], env={"COLUMNS": "200"})


def test_var_command_prints_var_and_es_and_writes_a_report(data_dir, tmp_path):
    report = tmp_path / "var.html"
    result = invoke(
        "var", PORTFOLIO, "--method", "hs", "--confidence", "0.99",
        "--data-dir", str(data_dir), "--report", str(report),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "house-book-example as of 2026-03-30: hs VaR / ES" in result.output
    assert "0.99" in result.output
    assert "<img" in report.read_text()


def test_var_command_values_several_files_and_their_total_together(data_dir, tmp_path):
    desk = tmp_path / "desk.yaml"
    desk.write_text(
        "name: desk-b\nas_of: 2026-03-30\npositions:\n"
        "  - {symbol: BTCUSDT-PERP, kind: linear_perpetual, underlying: BTC, quantity: '-8'}\n"
    )
    result = invoke(
        "var", PORTFOLIO, str(desk), "--method", "mc", "--paths", "4000", "--confidence", "0.99",
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("house-book-example", "desk-b", "total (all files)", "Student-t"):
        assert name in result.output


def test_var_command_refuses_ewma_on_options_with_the_reason(data_dir):
    result = invoke("var", PORTFOLIO, "--method", "ewma", "--data-dir", str(data_dir))
    assert result.exit_code == 2
    assert "closed-form for linear positions only" in result.output


def test_var_command_reports_every_problem_of_a_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("as_of: 2026-03-30\npositions:\n  - {symbol: X, kind: spot}\n")
    result = invoke("var", str(bad))
    assert result.exit_code == 2
    assert "positions[0].underlying" in result.output
    assert "positions[0].quantity: required" in result.output


def test_backtest_command_reports_kupiec_christoffersen_and_zones(data_dir, tmp_path):
    report = tmp_path / "bt.html"
    result = invoke(
        "backtest", "--assets", "BTC", "--method", "ewma", "--method", "hs",
        "--start", "2018-01-01", "--data-dir", str(data_dir), "--report", str(report),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for label in ("kupiec_p", "christoffersen_cc_p", "zone_last_250", "2018-04-25"):
        assert label in result.output
    assert report.read_text().count("<img") == 2


def test_stress_command_runs_crashes_shocks_and_reverse_stress(data_dir, tmp_path):
    result = invoke(
        "stress", PORTFOLIO, "--scenario", "2022-11-08", "--scenario", "all assets",
        "--shock", "-0.4", "--buffer", "100000", "--paths", "2000",
        "--data-dir", str(data_dir), "--report", str(tmp_path / "s.html"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2022-11-08 intraday" in result.output
    assert "all assets -40%" in result.output
    assert "correlations = 1" in result.output
    assert "reverse stress: uniform move down that loses 100,000 USD" in result.output
    assert "<img" in (tmp_path / "s.html").read_text()


def test_backtest_command_takes_a_linear_portfolio_and_refuses_options(data_dir, tmp_path):
    book = tmp_path / "book.yaml"
    book.write_text(
        "name: desk\nas_of: 2026-03-30\npositions:\n"
        "  - {symbol: BTCUSDT, kind: spot, underlying: BTC, quantity: '3'}\n"
        "  - {symbol: ETHUSD, kind: inverse_perpetual, underlying: ETH, quantity: '-500',"
        " multiplier: '10'}\n"
    )
    result = invoke(
        "backtest", str(book), "--method", "ewma", "--method", "hs",
        "--csv", str(tmp_path / "f.csv"), "--data-dir", str(data_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "desk: 99.0% 1-day VaR backtest" in result.output
    assert (tmp_path / "f.csv").read_text().startswith("date,pnl,var_ewma,var_hs")
    refused = invoke("backtest", PORTFOLIO, "--data-dir", str(data_dir))
    assert refused.exit_code == 2
    assert "options not supported" in refused.output


def test_dask_local_cluster_gives_the_single_process_numbers_exactly():
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    rng = np.random.default_rng(4)
    dense = rng.normal(0.0, 10.0, size=(3000, 12))
    sparse = dense * (rng.random(dense.shape) < 0.1)  # accounts hold ~1 in 10 instruments
    unit = rng.standard_t(4, size=(400, 12)) * 100.0
    levels = (0.99, 0.975)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for holdings in (dense, sparse):
            expected = book_var_es(holdings, unit, levels, chunk_rows=256)
            got = book_var_es_dask(
                client, holdings, unit, levels, accounts_per_task=512, chunk_rows=256
            )
            chunked = da.from_array(holdings, chunks=(1024, -1))  # a book loaded by workers
            from_array = book_var_es_dask(client, chunked, unit, levels, chunk_rows=256)
            for result in (got, from_array):
                assert np.array_equal(result[0], expected[0])
                assert np.array_equal(result[1], expected[1])
        with pytest.raises(ValueError, match="multiple of chunk_rows"):
            book_var_es_dask(client, dense, unit, 0.99, accounts_per_task=500, chunk_rows=256)
