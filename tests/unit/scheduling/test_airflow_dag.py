"""The Airflow DAG generated from pipeline.yaml: its phases and dependencies are Ploomber's, each
task runs one phase for {{ ds }}, it refuses to load once pipeline.yaml changed, bad options are
refused. (Airflow itself runs the DAG in tests/pipeline/test_airflow.py.)"""

from __future__ import annotations

import ast
import runpy
import shlex
import shutil
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from churn.cli import main
from churn.cli.dagstate import phase_graph
from churn.cli.project import Project, task_names
from churn.scheduling.airflow import DagOptions, SchedulingError, render_dag

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def graph() -> dict[str, tuple[str, ...]]:
    return phase_graph(Project(ROOT))


def generate(tmp_path: Path, *sets: str, name: str = "dag.py", extra: tuple[str, ...] = ()) -> tuple[int, str, Path]:
    target = tmp_path / name
    args = [a for s in sets for a in ("--set", s)]
    result = CliRunner().invoke(main, ["--project", str(ROOT), *args, "airflow-dag", "--out", str(target), *extra])
    return result.exit_code, result.output, target


def literal(source: str, name: str) -> object:
    """The value of the module-level assignment ``name = <literal>`` in ``source``."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not assigned in the DAG file")


def test_phase_graph_is_every_pipeline_task_with_its_upstream_in_topological_order(graph):
    assert sorted(graph) == sorted(task_names(ROOT))
    seen: set[str] = set()
    for phase, upstream in graph.items():
        assert set(upstream) <= seen, f"{phase} comes before its upstream {upstream}"
        seen.add(phase)
    assert graph["generate-data"] == ()
    assert graph["score-batch"] == ("publish-online", "train-model")  # the one fan-in


def test_regenerating_gives_the_same_file_with_the_pipelines_phases(tmp_path, graph):
    """The file is a pure function of pipeline.yaml and the options: generating twice gives the
    same bytes, and the phases and dependencies in it are Ploomber's."""
    code, output, first = generate(tmp_path, name="a.py")
    assert code == 0, output
    _, _, second = generate(tmp_path, name="b.py")
    assert first.read_bytes() == second.read_bytes()
    source = first.read_text()
    compile(source, str(first), "exec")
    assert literal(source, "PHASES") == {phase: list(up) for phase, up in graph.items()}


def test_each_task_runs_its_phase_as_a_partial_build_for_the_logical_date(tmp_path, graph):
    """One command per phase: this venv's python runs `churn build --partially PHASE` in this
    project with as_of = {{ ds }} (the first phase `churn cycle --as-of {{ ds }}`), plus the --set
    overrides the DAG was generated with."""
    code, output, target = generate(tmp_path, f"data_dir={tmp_path / 'ws data'}", "n_users=300")
    assert code == 0, output
    commands = literal(target.read_text(), "COMMANDS")
    assert isinstance(commands, dict) and list(commands) == list(graph)
    for phase, command in commands.items():
        argv = shlex.split(command)
        assert Path(argv[0]).is_absolute() and argv[1:3] == ["-m", "churn.cli"]
        assert argv[3:5] == ["--project", str(ROOT)]
        assert argv[5:9] == ["--set", f"data_dir={tmp_path / 'ws data'}", "--set", "n_users=300"]
        if graph[phase]:
            assert argv[9:] == ["build", "--partially", phase, "--env--as_of", "{{ ds }}"]
        else:  # the first phase: through the daily cycle's checks (a date already run is a no-op)
            assert argv[9:] == ["cycle", "--as-of", "{{ ds }}", "--partially", phase]


def test_dag_options_are_written_as_given(tmp_path):
    code, output, target = generate(
        tmp_path,
        extra=("--dag-id", "churn_eu", "--schedule", "30 2 * * 1-5", "--retries", "5", "--retry-delay", "3",
               "--start-date", "2026-02-01"),
    )  # fmt: skip
    assert code == 0, output
    source = target.read_text()
    assert "dag_id='churn_eu'" in source and "schedule='30 2 * * 1-5'" in source
    assert '"retries": 5, "retry_delay": timedelta(minutes=3)' in source
    assert "datetime(2026, 2, 1, tzinfo=timezone.utc)" in source
    assert "max_active_runs=1" in source and "max_active_tasks=1" in source and "catchup=False" in source


def test_the_default_start_date_is_the_datas_start(tmp_path):
    code, output, target = generate(tmp_path, "start=2025-03-01", "end=2026-03-01")
    assert code == 0, output
    assert "datetime(2025, 3, 1, tzinfo=timezone.utc)" in target.read_text()


def test_the_default_file_is_under_the_data_dir(tmp_path):
    result = CliRunner().invoke(main, ["--project", str(ROOT), "--set", f"data_dir={tmp_path}", "airflow-dag"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "airflow" / "dags" / "churn_daily.py").is_file()


def test_the_dag_refuses_to_load_once_pipeline_yaml_changed(tmp_path, graph):
    """Loading checks pipeline.yaml's sha256 before it imports Airflow: unchanged, the load gets
    as far as `import airflow` (not installed here); changed or gone, it fails naming the fix."""
    shutil.copy2(ROOT / "pipeline.yaml", tmp_path / "pipeline.yaml")
    dag = tmp_path / "dag.py"
    dag.write_text(render_dag(graph, root=tmp_path, python="/venv/bin/python", options=DagOptions()))
    with pytest.raises(ModuleNotFoundError, match="airflow"):
        runpy.run_path(str(dag))
    with (tmp_path / "pipeline.yaml").open("a") as handle:
        handle.write("\n# a change\n")
    with pytest.raises(RuntimeError, match=r"pipeline.yaml changed .*run `make airflow-dag` in " + str(tmp_path)):
        runpy.run_path(str(dag))
    (tmp_path / "pipeline.yaml").unlink()
    with pytest.raises(RuntimeError, match="changed \\(or is gone\\)"):
        runpy.run_path(str(dag))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (DagOptions(dag_id="churn daily"), "dag id 'churn daily' is not an Airflow id"),
        (DagOptions(schedule="every day"), "schedule 'every day' is neither a 5-field cron expression"),
        (DagOptions(retries=-1), "retries must be 0 or more"),
        (DagOptions(retry_delay_minutes=0), "retry delay must be at least 1 minute"),
    ],
)
def test_bad_options_are_refused_naming_the_option(graph, options, message):
    with pytest.raises(SchedulingError, match=message):
        render_dag(graph, root=ROOT, python="/venv/bin/python", options=options)


def test_bad_graphs_and_overrides_are_refused(graph):
    def render(g, **kw):
        return render_dag(g, root=ROOT, python=kw.pop("python", "/venv/bin/python"), options=DagOptions(), **kw)

    with pytest.raises(SchedulingError, match="no phases"):
        render({})
    with pytest.raises(SchedulingError, match=r"'b' depends on \['a'\], which are not phases"):
        render({"b": ("a",)})
    with pytest.raises(SchedulingError, match=r"must start with one phase .*not \['a', 'b'\]"):
        render({"a": (), "b": ()})
    with pytest.raises(SchedulingError, match="as_of comes from each run's logical date"):
        render(graph, sets={"as_of": "2026-01-02"})
    with pytest.raises(SchedulingError, match="Jinja delimiter"):
        render(graph, python="/opt/{{ venv }}/bin/python")


def test_the_command_line_refuses_bad_input_in_one_line(tmp_path):
    code, output, target = generate(tmp_path, "n_users=many")
    assert code == 1 and output.startswith("Error:") and "n_users" in output and not target.exists()
    code, output, target = generate(tmp_path, "as_of=2026-01-02")
    assert code == 1 and "as_of comes from each run's logical date" in output and not target.exists()
    code, output, target = generate(tmp_path, extra=("--schedule", "daily"))
    assert code == 1 and "schedule 'daily'" in output and not target.exists()


def test_default_options_are_daily_at_six_with_retries():
    options = DagOptions()
    assert (options.schedule, options.retries, options.retry_delay_minutes) == ("0 6 * * *", 2, 10)
    assert options.start_date == date(2025, 1, 1)
