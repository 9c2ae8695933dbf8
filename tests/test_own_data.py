"""k features and a user's own CSV, checked against scikit-learn's LinearRegression: synthetic
data with k = 3 and noise in-process, and the diabetes data set that scikit-learn ships run
through the real pipeline with the params docs/your-own-data.md gives for it."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error

from harness.project import (
    COEFFICIENTS,
    METRICS,
    MODEL,
    PREDICTIONS,
    PREDICTIONS_PNG,
    RAW,
    TEST_CSV,
    TRAIN_CSV,
    TRUTH,
    synthetic_dataset,
    use_real_table,
    yaml_blocks,
)
from linreg.core.dataset import Dataset, split_dataset
from linreg.core.errors import PipelineError
from linreg.core.evaluation import CONVERGED_GAP, predict
from linreg.core.model import ParameterModel, line_coefficients
from linreg.core.params import params_from_dict, with_overrides
from linreg.core.records import Truth
from linreg.core.training import fit
from linreg.io.artifacts import read_coefficients, read_predictions
from linreg.io.checkpoint import load_model, save_checkpoint
from linreg.io.datasets import read_dataset
from linreg.predict import parse_rows

from .browser import declared_plots, drawn, plots_page_dom
from .helpers import (
    ERROR_LINE_LIMIT,
    ROOT,
    STAGE_COMMANDS,
    Launcher,
    built_once,
    commit_reproduced,
    evaluate_whole,
    make_project,
    png_size,
    private_copy,
    project_env,
    run,
    set_param,
    stages_run,
)

# How close the trained model must come to the least-squares floor (the promise).
WITHIN_FLOOR = 0.02
THREE_WEIGHTS = [1.5, -2.0, 0.5]


def sklearn_floor(train: Dataset, test: Dataset) -> tuple[LinearRegression, float]:
    """scikit-learn's least-squares fit of the train set and its test MAE, in float64."""
    reference = LinearRegression().fit(train.x.astype(np.float64), train.y.astype(np.float64))
    y_pred = reference.predict(test.x.astype(np.float64))
    return reference, mean_absolute_error(test.y.astype(np.float64), y_pred)


@pytest.fixture
def three_features(params):
    """k = 3, noisy, 400 rows; shuffled split; standardised MSE by SGD (docs/your-own-data.md's recipe)."""
    return with_overrides(
        params,
        {
            "generate.weight": THREE_WEIGHTS,
            "generate.bias": 0.3,
            "generate.start": -2.0,
            "generate.end": 2.0,
            "generate.step": 0.01,
            "generate.noise_std": 0.1,
            "split.shuffle": True,
            "train.standardize": True,
            "train.loss": "mse",
            "train.lr": 0.1,
            "train.epochs": 500,
        },
        source="test",
    )


def test_k_synthetic_features_are_seeded_draws_on_the_plane(three_features):
    clean = three_features.generate.model_copy(update={"noise_std": 0.0})
    data = synthetic_dataset(clean)
    assert data.features == ("x1", "x2", "x3")
    assert data.x.shape == (400, 3)
    assert data.x.dtype == data.y.dtype == np.float32
    assert np.all((data.x >= -2.0) & (data.x <= 2.0))
    assert abs(np.corrcoef(data.x.T)[0, 1]) < 0.2  # drawn independently: not collinear
    np.testing.assert_allclose(data.y, data.x @ np.array(THREE_WEIGHTS) + 0.3, rtol=1e-6)
    again = synthetic_dataset(clean)
    assert data.x.tobytes() == again.x.tobytes()
    other = synthetic_dataset(clean.model_copy(update={"seed": 7}))
    assert not np.array_equal(data.x, other.x)


def test_one_weight_in_a_list_is_the_lesson(params):
    lesson = synthetic_dataset(params.generate)
    listed = synthetic_dataset(params.generate.model_copy(update={"weight": [0.7]}))
    assert listed.features == ("x",)
    assert (listed.x.tobytes(), listed.y.tobytes()) == (lesson.x.tobytes(), lesson.y.tobytes())


def test_parameter_model_draws_k_weights_then_bias_and_multiplies():
    torch.manual_seed(0)
    model = ParameterModel(features=3)
    torch.manual_seed(0)
    weight, bias = torch.randn(3), torch.randn(1)
    assert torch.equal(model.weight.detach(), weight)
    assert torch.equal(model.bias.detach(), bias)
    x = torch.randn(5, 3)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), (x @ weight + bias).unsqueeze(1))


def test_floor_and_trained_model_match_scikit_learn_on_k3(three_features):
    train, test = split_dataset(synthetic_dataset(three_features.generate), three_features.split)
    reference, reference_mae = sklearn_floor(train, test)
    result = fit(three_features.train, train, test)
    truth = Truth(weight=THREE_WEIGHTS, bias=0.3)
    metrics, _ = evaluate_whole(result.model, train, test, truth)

    assert metrics.lstsq_test_mae == pytest.approx(reference_mae, rel=1e-6)
    assert metrics.test_mae <= (1 + WITHIN_FLOOR) * metrics.lstsq_test_mae
    weights, bias = line_coefficients(result.model)  # in the data's units, not standardised ones
    np.testing.assert_allclose(weights, reference.coef_, atol=2e-3)
    assert bias == pytest.approx(reference.intercept_, abs=2e-3)
    assert metrics.weight is None  # one weight per feature: see weight_error
    assert metrics.weight_error == pytest.approx(np.max(np.abs(weights - THREE_WEIGHTS)))
    assert metrics.weight_error < 0.02  # the noise keeps it from 0


def test_standardised_model_saves_its_statistics_and_predicts_in_data_units(
    three_features, tmp_path
):
    train, test = split_dataset(synthetic_dataset(three_features.generate), three_features.split)
    model = fit(three_features.train.model_copy(update={"epochs": 50}), train, test).model
    path = tmp_path / "model.pt"
    save_checkpoint(path, model)
    loaded = load_model(path)
    np.testing.assert_array_equal(predict(loaded, test.x), predict(model, test.x))
    state = torch.load(path, weights_only=True)
    np.testing.assert_allclose(state["standardize"]["x_mean"], train.x.mean(axis=0), atol=1e-6)
    # predictions are in y's units: near the targets, not near standardised values around 0
    assert np.mean(np.abs(predict(loaded, test.x) - test.y)) < 0.5


def test_standardising_a_constant_train_column_is_refused(params):
    x = np.column_stack([np.arange(10, dtype=np.float32), np.full(10, 3, np.float32)])
    data = Dataset(x, np.arange(10, dtype=np.float32), ("a", "b"), "t")
    standardize = params.train.model_copy(update={"standardize": True, "epochs": 1})
    with pytest.raises(PipelineError, match="column 'b' is constant in the train set"):
        fit(standardize, data, data)


@pytest.mark.parametrize(
    ("gen", "message"),
    [
        (
            {"weight": 1.0},
            r"generate\.weight: not allowed with generate\.source = 'data/external/t\.csv'",
        ),
        ({"source": "/etc/t.csv"}, r"generate\.source = '/etc/t\.csv': expected synthetic or"),
        ({"source": "data/t.csv"}, r"generate\.source = 'data/t\.csv': expected synthetic or"),
        (
            {"source": "data/external/../../t.csv"},
            r"generate\.source = 'data/external/\.\./\.\./t\.csv'",
        ),
        ({"features": ["a", "t"]}, r"generate\.features: includes the target 't'"),
        ({"features": ["a", "a"]}, r"generate\.features: 'a' is listed twice"),
        ({"features": []}, r"generate\.features = \[\]: list should have at least 1 item"),
        ({"target": None}, r"missing key generate\.target"),
    ],
)
def test_bad_csv_params_are_one_line(params, gen, message):
    section = {"source": "data/external/t.csv", "features": ["a"], "target": "t"} | gen
    section = {key: value for key, value in section.items() if value is not None}
    with pytest.raises(PipelineError, match=message):
        params_from_dict(params.model_dump() | {"generate": section})


def test_csv_keys_in_a_synthetic_section_are_refused(params):
    generate = params.model_dump()["generate"] | {"target": "y"}
    with pytest.raises(PipelineError, match=r"generate\.target: not allowed with generate\."):
        params_from_dict(params.model_dump() | {"generate": generate})


def test_predict_rows_take_k_comma_separated_numbers():
    np.testing.assert_array_equal(parse_rows(["1,2,3", "4,5,6"], 3), [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(PipelineError, match=r"input '1,2': 2 value\(s\); the model takes 3"):
        parse_rows(["1,2"], 3)
    with pytest.raises(PipelineError, match="input '1,a,3': not comma-separated numbers"):
        parse_rows(["1,a,3"], 3)


# ---------------------------------------------------------------------------------------------
# The real pipeline on the diabetes data set, with the params of docs/your-own-data.md


def page_params() -> list[dict]:
    """The yaml blocks of docs/your-own-data.md, in order."""
    blocks = yaml_blocks("docs/your-own-data.md")
    assert blocks, "docs/your-own-data.md has no yaml block"
    return blocks


def readme_params() -> dict:
    """The params docs/your-own-data.md gives for the shipped example (its first yaml block)."""
    return page_params()[0]


def lbfgs_recipe() -> dict:
    """The train keys of the page's block that reaches the least-squares line."""
    (recipe,) = [block["train"] for block in page_params() if "generate" not in block]
    return recipe


def use_readme_params(project: Path) -> None:
    """params.yaml with the page's generate section and its split and train keys."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    wanted = readme_params()
    params["generate"] = wanted.pop("generate")
    for section, values in wanted.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


DIABETES = "data/external/diabetes.csv"


@pytest.fixture(scope="session")
def diabetes_template(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A project that follows docs/your-own-data.md, committed after `dvc repro`."""

    def build(folder: Path) -> Path:
        project = make_project(folder, project_env())
        run(project, sys.executable, str(ROOT / "examples/diabetes_csv.py"), DIABETES)
        run(project, "dvc", "add", DIABETES)
        use_readme_params(project)
        set_param(project, "train.device", "cpu")  # exact numbers below
        return commit_reproduced(project, "diabetes")

    return built_once(tmp_path_factory, worker_id, "diabetes", build)


@pytest.fixture
def diabetes(diabetes_template: Path, tmp_path: Path) -> Path:
    """A private copy of the diabetes project."""
    return private_copy(diabetes_template, tmp_path)


@pytest.mark.slow
def test_diabetes_matches_scikit_learn(diabetes: Path):
    train, test = (
        read_dataset(diabetes / TRAIN_CSV, dtype=np.float64),
        read_dataset(diabetes / TEST_CSV, dtype=np.float64),
    )
    assert train.features == ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
    assert train.target == "progression"
    assert len(train) + len(test) == len(load_diabetes().target)
    _, reference_mae = sklearn_floor(train, test)

    metrics = json.loads((diabetes / METRICS).read_text())
    assert metrics["lstsq_test_mae"] == pytest.approx(reference_mae, rel=1e-9)
    assert metrics["test_mae"] <= (1 + WITHIN_FLOOR) * metrics["lstsq_test_mae"]
    # the truth of real data is not known
    assert (metrics["weight"], metrics["weight_error"], metrics["bias_error"]) == (None,) * 3
    truth = {"weight": None, "bias": None, "rows_dropped": 0, "precision": "float64"}
    assert json.loads((diabetes / TRUTH).read_text()) == truth

    predictions = read_predictions(diabetes / PREDICTIONS)
    assert predictions.data.features == train.features
    assert png_size((diabetes / PREDICTIONS_PNG).read_bytes()) == (1400, 600)

    # predict: one row of ten comma-separated values, as predictions.csv's first row
    row = ",".join(repr(float(value)) for value in predictions.x[0])
    printed = run(diabetes, "python", "-m", "linreg.predict", row).stdout
    assert printed.split("\t") == [row, f"{predictions.y_pred[0]:.6f}\n"]


@pytest.mark.slow
def test_plots_show_draws_a_csv_sources_charts_offline(chromium: str, diabetes: Path):
    """The charts dvc.yaml declares name no column of the lesson's alone: a CSV source's draw
    too, with no edit (the lesson's, in two revisions: tests/test_plots_page.py)."""
    dom = plots_page_dom(chromium, diabetes, "show")
    for path in declared_plots():
        plot = drawn(dom, path)
        assert plot.images == 1 if path.endswith(".png") else plot.marks >= 1, path


@pytest.mark.slow
def test_a_changed_csv_reruns_all_five_and_another_file_only_generate(diabetes: Path):
    assert stages_run(run(diabetes, "dvc", "repro").stdout) == []
    (diabetes / "data/external/notes.csv").write_text("a,b\n1,2\n")  # beside, not the source
    assert stages_run(run(diabetes, "dvc", "repro").stdout) == ["generate"]

    csv_file = diabetes / DIABETES
    lines = csv_file.read_text().splitlines(keepends=True)
    csv_file.write_text("".join(lines[:-1]))  # one patient fewer
    run(diabetes, "dvc", "add", DIABETES)
    expected = ["generate", "split", "train", "evaluate", "plot"]
    assert stages_run(run(diabetes, "dvc", "repro").stdout) == expected


@pytest.mark.slow
def test_compare_reproduces_a_csv_sources_base_from_the_cache(diabetes: Path):
    """As in CI: a clone whose cache holds the CSV (`dvc pull`) and no pipeline output, so the
    base is reproduced in a worktree, which takes the CSV from this cache."""
    run(diabetes, "git", "checkout", "-q", "-b", "change")
    set_param(diabetes, "train.lr", 0.05)
    run(diabetes, "dvc", "repro")
    shutil.rmtree(diabetes / ".dvc/cache")
    run(diabetes, "dvc", "add", DIABETES)

    run(diabetes, sys.executable, "-m", "linreg.experiments.compare", "--base", "main")

    report = (diabetes / "comparison/report.md").read_text()
    assert "_Base artifacts reproduced in a temporary git worktree" in report
    assert "| train.lr | 0.1 | 0.05 |" in report
    assert png_size((diabetes / "comparison/predictions.png").read_bytes())[0] > 0


@pytest.mark.slow
def test_a_sweep_runs_on_a_csv_source(diabetes: Path):
    """Each point's temporary copy of the workspace takes the CSV from the cache."""
    table = run(diabetes, sys.executable, "-m", "linreg.experiments.sweep", "train.epochs=200")
    assert [row.split("|")[1].strip() for row in table.stdout.splitlines()[2:]] == [
        "train.epochs=200"
    ]


def csv_text(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


GOOD_ROWS = ("1,10,5", "2,30,7", "3,20,8")


CSV_SOURCE = {"source": "data/external/t.csv", "features": ["a", "b"], "target": "t"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "message", "generate"),
    [
        (
            csv_text("a,b,t", *GOOD_ROWS),
            r"params\.yaml: generate\.source = '\.\./t\.csv': expected synthetic or the path",
            CSV_SOURCE | {"source": "../t.csv"},
        ),
        (
            csv_text("a,b,t", *GOOD_ROWS),
            r"params\.yaml: generate\.features: includes the target 't'",
            CSV_SOURCE | {"features": ["a", "t"]},
        ),
        (csv_text("a,c,t", *GOOD_ROWS), r"missing column\(s\) b; found: a, c, t", CSV_SOURCE),
        (
            csv_text("a,b,t", "1,10,5", "2,oops,7"),
            r"line 3, column b: 'oops' is not a number",
            CSV_SOURCE,
        ),
        (
            csv_text("a,b,t", "1,10,5", "2,,7", "3,NA,8"),
            r"2 of 3 rows have a missing cell \(the first: line 3, column 'b': ''\); "
            r"generate\.missing: drop leaves them out$",
            CSV_SOURCE,
        ),
        (csv_text("a,b,t", "1,10,5"), r"1 data row; at least 2 are needed", CSV_SOURCE),
        (
            csv_text("a,b,t", "1,4,5", "2,4,7"),
            r"column 'b' is constant \(every row 4\)",
            CSV_SOURCE,
        ),
        (
            csv_text("a,b,b,t", "1,2,3,4", "5,6,7,8"),
            r"line 1: column 'b' appears 2 times",
            CSV_SOURCE,
        ),
        (
            csv_text("a,b,t", "1,10,5", "2,inf,7"),
            r"line 3, column b: inf is not a finite number",
            CSV_SOURCE,
        ),
    ],
    ids=[
        "outside data/external",
        "target as a feature",
        "missing column",
        "text",
        "empty cell",
        "one row",
        "constant",
        "duplicate",
        "inf",
    ],
)
def test_a_bad_csv_is_one_line_and_writes_nothing(
    tmp_path: Path, launcher: Launcher, text: str, message: str, generate: dict
):
    """The generate stage forked from the stage launcher (test_faults proves the wiring of a
    stage's own process)."""
    project = make_project(tmp_path, project_env())
    (project / "data/external/t.csv").write_text(text)
    set_param(project, "generate", generate)

    code, stderr = launcher.run(project, STAGE_COMMANDS["generate"], tmp_path / "stderr")

    assert code == 1, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert len(stderr) <= ERROR_LINE_LIMIT
    where = "" if message.startswith("params") else r"data/external/t\.csv: "
    assert re.match(f"error: {where}{message}", stderr), stderr
    assert not (project / RAW).exists()
    assert not (project / TRUTH).exists()


@pytest.mark.slow
def test_rows_with_a_missing_cell_are_left_out_when_asked(tmp_path: Path):
    """generate.missing: drop writes the rows pandas keeps after dropna (the strings that mean
    missing are pandas' own), says how many it left out, and data/truth.json keeps the count."""
    rows = ["1,10,5", "2,NA,7", "3,20,8", "4,,9", "5,nan,1", "6,None,2", "7,40,null", "8,5,3"]
    rows += ['9,"",4', '10,"NA",6', '11,"12",7']  # quoted: missing or not as unquoted
    project = make_project(tmp_path, project_env())
    table = project / "data/external/t.csv"
    table.write_text(csv_text("a,b,t", *rows))
    set_param(project, "generate", CSV_SOURCE | {"missing": "drop"})

    result = run(project, "sh", "-c", STAGE_COMMANDS["generate"])

    kept = pd.read_csv(table).dropna().to_numpy(dtype=np.float64)
    dropped = len(rows) - len(kept)
    assert (len(kept), dropped) == (4, 7)
    assert f"data/external/t.csv: {dropped} rows with a missing cell left out" in result.stdout
    np.testing.assert_array_equal(pd.read_csv(project / RAW).to_numpy(dtype=np.float64), kept)
    assert json.loads((project / TRUTH).read_text())["rows_dropped"] == dropped


@pytest.mark.slow
@pytest.mark.parametrize("linked", ["the file", "the folder"])
def test_a_link_out_of_data_external_is_refused(tmp_path: Path, linked: str):
    project = make_project(tmp_path, project_env())
    outside = tmp_path / "outside/t.csv"
    outside.parent.mkdir()
    outside.write_text(csv_text("a,b,t", *GOOD_ROWS))
    if linked == "the file":
        (project / "data/external/t.csv").symlink_to(outside)
    else:
        shutil.rmtree(project / "data/external")
        (project / "data/external").symlink_to(outside.parent)
    set_param(
        project, "generate", {"source": "data/external/t.csv", "features": ["a"], "target": "t"}
    )

    result = run(project, "sh", "-c", STAGE_COMMANDS["generate"], check=False)

    assert result.returncode == 1
    assert "outside data/external/" in result.stderr
    assert not (project / RAW).exists()


@pytest.mark.slow
def test_an_ill_conditioned_table_keeps_its_precision_and_matches_the_references(
    tmp_path: Path,
):
    """Longley's table (statsmodels ships it), the standard badly conditioned least-squares
    benchmark: six features near 10^2 to 10^5, nearly collinear. Its numbers reach the data files
    as written (float64), and the least-squares reference matches scikit-learn's and
    statsmodels' fits of the same split to 1e-9, where float32 data misses by about 1e-6.
    Trained with train.dtype: float64, evaluate and predict take that precision from the
    checkpoint."""
    import statsmodels.api as sm

    longley = sm.datasets.longley.load_pandas().data
    names = [*longley.columns[1:], longley.columns[0]]  # the features, then TOTEMP
    project = make_project(tmp_path, project_env())
    longley[names].to_csv(project / "data/external/longley.csv", index=False)
    set_param(project, "generate", {
        "source": "data/external/longley.csv", "features": names[:-1], "target": names[-1],
    })  # fmt: skip
    set_param(project, "train.standardize", True)
    set_param(project, "train.dtype", "float64")
    for stage in ("generate", "split", "train", "evaluate"):
        run(project, "sh", "-c", STAGE_COMMANDS[stage])

    table = longley[names].to_numpy()
    raw = pd.read_csv(project / RAW).to_numpy()
    np.testing.assert_array_equal(raw, table)  # every number as written, to the last bit
    cut = int(0.8 * len(table))
    x_train, y_train, x_test, y_test = (
        table[:cut, :-1],
        table[:cut, -1],
        table[cut:, :-1],
        table[cut:, -1],
    )
    scikit = mean_absolute_error(y_test, LinearRegression().fit(x_train, y_train).predict(x_test))
    ols = sm.OLS(y_train, sm.add_constant(x_train)).fit()
    statsmodels = mean_absolute_error(
        y_test, ols.predict(sm.add_constant(x_test, has_constant="add"))
    )
    reference = json.loads((project / METRICS).read_text())["lstsq_test_mae"]
    assert reference == pytest.approx(scikit, rel=1e-9)
    assert reference == pytest.approx(statsmodels, rel=1e-9)
    rounded = table.astype(np.float32).astype(np.float64)  # what float32 data files held
    x32, y32 = rounded[:cut, :-1], rounded[:cut, -1]
    float32_mae = mean_absolute_error(
        y_test, LinearRegression().fit(x32, y32).predict(rounded[cut:, :-1])
    )
    assert abs(float32_mae - scikit) > 1e-9 * scikit  # the check could fail on float32 data

    model = load_model(project / MODEL)
    assert {tensor.dtype for tensor in model.state_dict().values()} == {torch.float64}
    weights, bias = line_coefficients(model)
    model_mae = mean_absolute_error(y_test, x_test @ weights + bias)
    metrics = json.loads((project / METRICS).read_text())
    assert metrics["test_mae"] == pytest.approx(model_mae, rel=1e-9)  # float32: 1e-5 off
    row = ",".join(repr(float(value)) for value in x_test[0])
    printed = run(project, "python", "-m", "linreg.predict", row).stdout
    assert float(printed.split("\t")[1]) == pytest.approx(x_test[0] @ weights + bias, abs=1e-5)


def trained_with(project: Path, train: dict) -> tuple[str, dict, dict]:
    """The train and evaluate stages run with these train keys: what evaluate printed, the
    metrics and reports/coefficients.csv by term."""
    for key, value in train.items():
        set_param(project, f"train.{key}", value)
    run(project, "sh", "-c", STAGE_COMMANDS["train"])
    printed = run(project, "sh", "-c", STAGE_COMMANDS["evaluate"]).stdout
    metrics = json.loads((project / METRICS).read_text())
    return printed, metrics, read_coefficients(project / COEFFICIENTS)


@pytest.mark.slow
@pytest.mark.parametrize("table", ["diabetes", "longley"])
def test_sgd_says_it_stopped_short_and_lbfgs_reaches_the_references(tmp_path: Path, table: str):
    """docs/your-own-data.md's two recipes on real tables, against scikit-learn's and
    statsmodels' least-squares fits of the pipeline's own train set."""
    import statsmodels.api as sm

    project = make_project(tmp_path, project_env())
    use_real_table(project, table)
    for stage in ("generate", "split"):
        run(project, "sh", "-c", STAGE_COMMANDS[stage])
    train = read_dataset(project / TRAIN_CSV, dtype=np.float64)
    scikit = LinearRegression().fit(train.x, train.y)
    ols = sm.OLS(train.y, sm.add_constant(train.x)).fit().params  # the constant first
    terms = [*train.features, "bias"]
    references = {
        "scikit-learn": dict(zip(terms, [*scikit.coef_, scikit.intercept_], strict=True)),
        "statsmodels": dict(zip(terms, [*ols[1:], ols[0]], strict=True)),
    }

    printed, metrics, coefficients = trained_with(project, readme_params()["train"])  # SGD
    assert metrics["train_loss_gap"] > CONVERGED_GAP
    assert printed.startswith("not converged: train_loss_gap = "), printed
    assert list(coefficients) == terms
    for reference in references.values():
        for term, (_, least_squares) in coefficients.items():
            assert least_squares == pytest.approx(reference[term], rel=1e-9, abs=1e-9), term

    printed, metrics, coefficients = trained_with(project, lbfgs_recipe())
    assert metrics["train_loss_gap"] <= CONVERGED_GAP
    assert "not converged" not in printed
    for name, reference in references.items():
        for term, (trained, _) in coefficients.items():
            assert trained == pytest.approx(reference[term], rel=1e-6), f"{name}: {term}"
