"""``eval-pipelines report DIR`` and the trend dashboard, on real demo evaluations.

Three weeks of the fraud detector are evaluated with the CLI into ``<root>/<model>/<week>/``
(the Dagster layout). What a user checks: a re-rendered report is the report the run wrote,
byte for byte, from the folder alone; a folder missing an artifact is one sentence and exit
64; the dashboard lists every week, draws each headline metric's band per version, has one
verdict row per week whose links open the week's report, and opens offline in headless
Chromium (see test_report_browser.py) with no console error and no request but the file;
each report links the dashboard; the Dagster asset rebuilds it after a week's evaluation.
"""

import re
import shutil
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import pytest
from dagster import AssetKey, Definitions, instance_for_test
from support.mlflow_store import migrated_store
from test_report_browser import CHROMIUM, CHROMIUM_ARGS, LAPTOP, MAX_BYTES, open_report

from assets.evaluation import build_weekly_assets
from eval_pipelines.cli import main
from eval_pipelines.dashboard import read_weeks, render_dashboard
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.report_artifacts import REQUIRED
from eval_pipelines.spec import load_spec
from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

MODEL = "fraud_detector"
SPEC_PATH = Path(__file__).resolve().parents[1] / "evals" / f"{MODEL}.yaml"
WEEKS = ["2026-11-02", "2026-11-09", "2026-11-16"]  # the demo's last three weeks
VERSIONS = ["v1", "v2"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Three weeks evaluated by ``eval-pipelines run`` into ``<root>/fraud_detector/<week>/``,
    then the dashboard built by ``eval-pipelines dashboard``."""
    base = tmp_path_factory.mktemp("dashboard")
    warehouse = base / "warehouse.duckdb"
    build_demo_warehouse(warehouse, rows=20_000)
    root = base / "out"
    url = f"duckdb:///{warehouse}"
    for week in WEEKS:
        args = ["run", "--spec", str(SPEC_PATH), "--week", week, "--warehouse", url]
        args += ["--out", str(root / MODEL / week), "--mlflow", "", "--quiet"]
        assert main(args) == 0
    code = main(["dashboard", MODEL, "--out-root", str(root)])
    return SimpleNamespace(
        warehouse=warehouse, root=root, code=code, page=root / MODEL / "dashboard.html"
    )


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# ------------------------------------------------------------------------- report DIR


def test_report_dir_re_renders_each_week_byte_for_byte_from_the_folder_alone(demo, capsys):
    for week in WEEKS:
        folder = demo.root / MODEL / week
        written = {name: (folder / name).read_bytes() for name in ("report.html", "report.md")}
        for name in written:
            (folder / name).unlink()
        # No warehouse: the re-render must not need one.
        moved = demo.warehouse.with_suffix(".away")
        demo.warehouse.rename(moved)
        try:
            assert main(["report", str(folder)]) == 0
        finally:
            moved.rename(demo.warehouse)
        for name, content in written.items():
            assert (folder / name).read_bytes() == content, f"{week}/{name} differs"
        assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    printed = capsys.readouterr().out.split()
    assert str(demo.root / MODEL / WEEKS[-1] / "report.html") in printed


@pytest.mark.parametrize("missing", ["metrics.parquet", "run.json", "verdict.json"])
def test_a_folder_missing_an_artifact_is_one_sentence_and_exit_64(demo, tmp_path, capsys, missing):
    assert missing in REQUIRED
    folder = tmp_path / WEEKS[-1]
    shutil.copytree(demo.root / MODEL / WEEKS[-1], folder)
    (folder / missing).unlink()
    report = (folder / "report.html").read_bytes()
    assert main(["report", str(folder)]) == 64
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and missing in err and str(folder) in err
    assert (folder / "report.html").read_bytes() == report  # nothing rewritten


def test_every_week_report_links_the_dashboard_relatively(demo):
    for week in WEEKS:
        html = (demo.root / MODEL / week / "report.html").read_text()
        assert '<a href="../dashboard.html" id="dashboard-link">' in html
        assert (demo.root / MODEL / week / "../dashboard.html").resolve() == demo.page


def test_a_report_outside_the_week_layout_has_no_dashboard_link(demo, tmp_path):
    folder = tmp_path / "some-run"
    shutil.copytree(demo.root / MODEL / WEEKS[0], folder)
    assert main(["report", str(folder)]) == 0
    assert "dashboard-link" not in (folder / "report.html").read_text()


# ---------------------------------------------------------------------------- dashboard


def test_the_dashboard_command_exits_0_and_writes_a_small_page(demo, capsys):
    assert demo.code == 0
    assert demo.page.is_file() and demo.page.stat().st_size < MAX_BYTES
    assert main(["dashboard", MODEL, "--out-root", str(demo.root)]) == 0
    assert capsys.readouterr().out.strip() == str(demo.root / MODEL / "dashboard.html")
    assert not [p for p in demo.page.parent.iterdir() if p.name.startswith(".")]


def test_the_dashboard_of_a_model_with_no_evaluated_week_is_one_sentence(tmp_path, capsys):
    assert main(["dashboard", "nobody", "--out-root", str(tmp_path)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no evaluated week of nobody" in err


def test_the_dashboard_opens_offline_and_shows_every_week(demo, browser):
    opened = open_report(browser, demo.page, LAPTOP)
    page = opened.page
    assert opened.errors == []
    assert opened.requests == [demo.page.resolve().as_uri()]
    # Verdict history: one row per week, latest first, each linking an existing report.html.
    rows = page.eval_on_selector_all(
        "#verdict-history tbody tr", "rows => rows.map(r => r.dataset.week)"
    )
    assert rows == WEEKS[::-1]
    decisions = page.eval_on_selector_all(
        "#verdict-history tbody tr td.decision", "cells => cells.map(c => c.textContent.trim())"
    )
    assert len(decisions) == len(WEEKS) and all(decisions)
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    assert len(hrefs) == len(WEEKS)
    for href in hrefs:
        path = Path(url2pathname(urlsplit(href).path))
        assert path.is_file() and path.name == "report.html" and path.parent.name in WEEKS
    assert urljoin(demo.page.resolve().as_uri(), f"{WEEKS[0]}/report.html") in hrefs
    # Every week on the page: in the drift table's header and on each plot's axis.
    header = page.eval_on_selector_all("#drift-table thead th", "c => c.map(x => x.textContent)")
    assert header[2:] == WEEKS
    page.screenshot(path=str(demo.page.with_suffix(".png")), full_page=True)
    page.context.close()


@pytest.mark.parametrize("metric", ["roc_auc", "recall"])
def test_each_headline_metric_has_a_band_and_a_marker_per_week_for_every_version(
    demo, browser, metric
):
    opened = open_report(browser, demo.page, LAPTOP)
    plot = f'.metric-plot[data-metric="{metric}"] svg'
    bands = opened.page.eval_on_selector_all(f"{plot} polygon", "p => p.length")
    assert bands == len(VERSIONS)
    for version in VERSIONS:
        markers = opened.page.eval_on_selector_all(
            f"{plot} circle > title",
            f"ts => ts.filter(t => t.textContent.startsWith('{version} · ')).length",
        )
        assert markers == len(WEEKS)
    opened.page.context.close()


def test_drift_and_label_coverage_are_shown_per_week(demo):
    html = demo.page.read_text()
    # The demo's amount feature drifts in its last week (test_report_browser's planted truth).
    amount = re.search(r"<tr><td>amount</td><td>psi</td>(.*?)</tr>", html).group(1)
    cells = re.findall(r"<td class=\"n( drifted)?\">", amount)
    assert len(cells) == len(WEEKS) and cells[-1] == " drifted"
    coverage = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>(v\d)</td>", html)
    assert sorted(coverage) == sorted((w, v) for w in WEEKS for v in VERSIONS)


def test_three_years_of_weeks_stay_under_2_mb(demo):
    """156 weeks (the demo's weeks repeated under new labels): the page grows with weeks x
    metrics x versions and weeks x features, a few hundred bytes each."""
    weeks = read_weeks(demo.root, MODEL)
    first = date.fromisoformat(WEEKS[0])
    many = [
        replace(weeks[i % len(weeks)], week=(first + timedelta(weeks=i)).isoformat())
        for i in range(156)
    ]
    html = render_dashboard(MODEL, many)
    assert len(html.encode()) < MAX_BYTES
    assert html.count('<tr data-week="') == 156


# ------------------------------------------------------------------------------ Dagster


def test_the_weekly_evaluation_rebuilds_the_dashboard_asset_after_a_week(demo, tmp_path):
    root = tmp_path / "artifacts"
    for week in WEEKS[:-1]:  # two earlier weeks already evaluated
        shutil.copytree(demo.root / MODEL / week, root / MODEL / week)
    spec = load_spec(SPEC_PATH)
    definitions = Definitions(
        assets=[build_weekly_assets(spec)],
        resources={
            "warehouse": WarehouseResource(url=f"duckdb:///{demo.warehouse}"),
            "artifacts": ArtifactStoreResource(root=str(root)),
            "mlflow": MlflowResource(
                tracking_uri=migrated_store(tmp_path / "mlflow.db"),
                artifact_location=str(tmp_path / "mlartifacts"),
            ),
            "alerts": AlertsResource(),
        },
    )
    job = definitions.resolve_implicit_global_asset_job_def()
    key = AssetKey([MODEL, "dashboard"])
    with instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, partition_key=WEEKS[-1])
        assert result.success
        assert instance.get_materialized_partitions(key) == {WEEKS[-1]}
        [record] = instance.fetch_materializations(key, limit=1).records
        metadata = record.asset_materialization.metadata
    page = root / MODEL / "dashboard.html"
    assert metadata["weeks"].value == len(WEEKS)
    assert Path(metadata["dashboard"].value) == page.resolve()
    html = page.read_text()
    assert all(f'href="{week}/report.html"' in html for week in WEEKS)
    assert 'href="../dashboard.html"' in (root / MODEL / WEEKS[-1] / "report.html").read_text()
