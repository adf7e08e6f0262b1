"""Optional experiment tracking (config `tracking`): what a training sends, the jobs' commands, the errors.

Neither tensorboard nor mlflow is in the lock, so the tests that write a real local store run only where the
package is installed (pytest -rs names them); the others check what the loop sends through recording stand-ins
of the two packages' APIs, and the clear error when the package is missing."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest

from deepaug.domains.text.train import TextPretrainSettings, pretrain
from deepaug.engine.tracking import open_tracker


def _train(tmp_path, tiny_model_dir, text_files, tracking: str, name: str = "run"):
    corpus, dev = text_files
    s = TextPretrainSettings(
        run="text/lee/run/seed0",
        batch_size=8,
        max_steps=2,
        eval_every=1,  # two periods, each with a dev check
        eval_max_len=8,
        precision="fp32",
        device="cpu",
        tracking=tracking,
    )
    return pretrain(s, tiny_model_dir, corpus, dev, tmp_path / name, tmp_path / f"{name}_ckpt")


class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return SimpleNamespace(info=SimpleNamespace(run_id="r1"))

        return record


@pytest.fixture
def fake_mlflow(monkeypatch):
    rec = Recorder()
    module = types.ModuleType("mlflow")
    for name in ("set_tracking_uri", "set_experiment", "start_run", "log_params", "log_metrics", "end_run"):
        setattr(module, name, getattr(rec, name))
    monkeypatch.setitem(sys.modules, "mlflow", module)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return rec


@pytest.fixture
def fake_tensorboard(monkeypatch):
    rec = Recorder()
    module = types.ModuleType("torch.utils.tensorboard")

    class SummaryWriter:
        def __init__(self, log_dir):
            rec.calls.append(("__init__", (log_dir,), {}))

        def __getattr__(self, name):
            return getattr(rec, name)

    module.SummaryWriter = SummaryWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", module)
    return rec


def test_mlflow_gets_settings_losses_and_dev_scores(tmp_path, tiny_model_dir, text_files, fake_mlflow, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _train(tmp_path, tiny_model_dir, text_files, "mlflow")
    names = [c[0] for c in fake_mlflow.calls]
    assert names[:4] == ["set_tracking_uri", "set_experiment", "start_run", "log_params"] and names[-1] == "end_run"
    assert fake_mlflow.calls[0][1][0] == (tmp_path / "tracking" / "mlruns").resolve().as_uri()  # a local file store
    assert fake_mlflow.calls[1][1] == ("deepaug",)
    assert fake_mlflow.calls[2][2]["run_name"] == "text/lee/run/seed0"
    params = fake_mlflow.calls[3][1][0]
    assert params["lr"] and params["method"] == "none" and params["tracking"] == "mlflow"
    metrics = [c for c in fake_mlflow.calls if c[0] == "log_metrics"]
    assert [m[2]["step"] for m in metrics] == [1, 2]
    for m in metrics:
        assert {"loss", "lr"} <= set(m[1][0])
        assert any(k.startswith("dev") for k in m[1][0]), m[1][0]


def test_tensorboard_gets_settings_losses_and_dev_scores(
    tmp_path, tiny_model_dir, text_files, fake_tensorboard, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    _train(tmp_path, tiny_model_dir, text_files, "tensorboard")
    calls = fake_tensorboard.calls
    assert calls[0] == ("__init__", ("tracking/tensorboard/text/lee/run/seed0",), {})
    assert calls[1][0] == "add_text" and '"tracking": "tensorboard"' in calls[1][1][1]
    scalars = [(c[1][0], c[1][2]) for c in calls if c[0] == "add_scalar"]
    assert ("loss", 1) in scalars and ("loss", 2) in scalars
    assert any(tag.startswith("dev") and step == 2 for tag, step in scalars)
    assert calls[-1][0] == "close"


def test_tracking_keeps_the_fingerprint(tmp_path, tiny_model_dir, text_files, fake_mlflow):
    a = _train(tmp_path, tiny_model_dir, text_files, "none", "a")
    b = _train(tmp_path, tiny_model_dir, text_files, "mlflow", "b")
    assert a["fingerprint"]["settings_sha256"] == b["fingerprint"]["settings_sha256"]


def test_a_missing_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    from deepaug.errors import DataUnavailableError

    with pytest.raises(DataUnavailableError, match=r"tracking: mlflow needs the mlflow package.*tracking: none"):
        open_tracker("mlflow", "r", tmp_path)
    with pytest.raises(DataUnavailableError, match=r"tracking: tensorboard needs the tensorboard package"):
        open_tracker("tensorboard", "r", tmp_path)
    with pytest.raises(ValueError, match="tracking must be one of"):
        open_tracker("wandb", "r", tmp_path)
    assert type(open_tracker("none", "r", tmp_path)).__name__ == "Tracker"


def test_the_jobs_commands_change_only_when_tracking_is_on():
    from deepaug.workflow.config import REPO_CONFIG, merge_config, read_yaml, validate_config
    from deepaug.workflow.jobs import Jobs
    from deepaug.workflow.runs import expand

    demo = read_yaml(REPO_CONFIG.parent / "config" / "demo.yaml")

    def commands(extra):
        config = validate_config(merge_config(merge_config(read_yaml(REPO_CONFIG), demo), extra))
        jobs = Jobs(config, expand(config))
        wildcards = [SimpleNamespace(domain=r.domain, dataset=r.dataset, run=r.id, seed=str(r.seed)) for r in jobs.runs]
        return [jobs.run_command(w) for w in wildcards]

    plain, none, on = commands({}), commands({"tracking": "none"}), commands({"tracking": "tensorboard"})
    assert plain == none and not any("--tracking" in c for c in plain)
    assert len(on) == len(plain) and all(c.count("--tracking tensorboard") == 1 for c in on)
    assert [c.replace(" --tracking tensorboard", "") for c in on] == plain


def test_a_bad_tracking_value_names_the_key():
    from deepaug.workflow.config import REPO_CONFIG, merge_config, read_yaml, validate_config

    with pytest.raises(Exception, match="tracking"):
        validate_config(merge_config(read_yaml(REPO_CONFIG), {"tracking": "wandb"}))


def test_a_real_mlflow_file_store(tmp_path, tiny_model_dir, text_files, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _train(tmp_path, tiny_model_dir, text_files, "mlflow")
    client = mlflow.tracking.MlflowClient((tmp_path / "tracking" / "mlruns").resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("deepaug").experiment_id])
    assert run.data.params["tracking"] == "mlflow"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2]


def test_a_real_tensorboard_event_file(tmp_path, tiny_model_dir, text_files, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)
    _train(tmp_path, tiny_model_dir, text_files, "tensorboard")
    acc = EventAccumulator(str(tmp_path / "tracking" / "tensorboard" / "text" / "lee" / "run" / "seed0"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss")] == [1, 2]
