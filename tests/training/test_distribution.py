"""--strategy (models/distributed.py, the distributed steps of models/cbigan.py, training/loop.py).

The multi-replica checks run in one subprocess that splits the CPU into two logical devices before TensorFlow
initialises (the split must not reach the other tests): for the same global batch and seed, a MirroredStrategy
run over the two devices gives the losses and weights of the one-device run; its checkpoints restore under the
strategy and without it; the training job trains, previews, checkpoints and scores under it.
"""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from config import TrainConfig
from errors import ConfigError
from models import distributed
from tests.helpers import REPO
from tests.helpers.config import tiny_config

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from models import distributed
    distributed.split_cpu(2)
    import tensorflow as tf
    from models.cbigan import CBiGAN
    from tests.helpers.config import tiny_config

    out = {}
    config = tiny_config(d_iter=1, lr=1e-3, alpha=0.5, seed=5)
    data = tf.constant(np.random.default_rng(0).uniform(-1, 1, (20, 32, 32, 3)), tf.float32)
    batches = tf.data.Dataset.from_tensor_slices(data).batch(4, drop_remainder=True)   # 5 global batches of 4

    def losses(kind_results):
        kind, results = kind_results
        return [kind, {name: float(value) for name, value in results.items()}]

    def snapshot(model):
        return [w.numpy() for net in (model.encoder, model.generator, model.critic, model.ema_encoder,
                                      model.ema_generator) for w in net.weights]

    def max_relative(a, b):
        return max(float(np.abs(u - v).max() / (np.abs(u).max() + 1e-8)) for u, v in zip(a, b))

    single = CBiGAN(config, 32)
    strategy = distributed.make_strategy("mirrored")
    out["replicas"] = strategy.num_replicas_in_sync
    mirrored = CBiGAN(config, 32, strategy=strategy)
    out["variable_type"] = type(mirrored.encoder.weights[0].value).__name__
    out["initial_weights_equal"] = max_relative(snapshot(single), snapshot(mirrored)) == 0.0
    singles = list(batches)
    distributed_batches = list(strategy.experimental_distribute_dataset(batches))
    out["single"] = [losses(single.train_batch(x)) for x in singles[:4]]            # C G C G
    out["mirrored"] = [losses(mirrored.train_batch(x)) for x in distributed_batches[:4]]
    out["weights_max_relative_difference"] = max_relative(snapshot(single), snapshot(mirrored))
    out["replicas_identical"] = all(
        all(np.array_equal(values[0].numpy(), v.numpy()) for v in values[1:])
        for values in (strategy.experimental_local_results(w.value)
                       for net in (mirrored.encoder, mirrored.critic, mirrored.ema_generator) for w in net.weights))
    out["counters"] = [int(mirrored.step.numpy()), int(mirrored.ema_updates.numpy()),
                       int(mirrored.critic_optimizer.iterations.numpy()),
                       int(mirrored.ge_optimizer.iterations.numpy())]

    # checkpoints: written under the strategy, read under it (resume) and without it (evaluation)
    path = mirrored.checkpoint().write(sys.argv[1] + "/ckpt")
    resumed = CBiGAN(tiny_config(d_iter=1, lr=1e-3, alpha=0.5, seed=99), 32, strategy=strategy)
    resumed.checkpoint().read(path).assert_consumed()
    out["resumed_equal"] = max_relative(snapshot(mirrored), snapshot(resumed)) == 0.0
    out["resumed_rng_equal"] = bool(np.array_equal(resumed.rng.state.numpy(), mirrored.rng.state.numpy()))
    out["resumed_next"] = losses(resumed.train_batch(distributed_batches[4]))
    out["single_next"] = losses(single.train_batch(singles[4]))
    plain = CBiGAN(tiny_config(d_iter=1, lr=1e-3, alpha=0.5, seed=99), 32)
    plain.checkpoint().read(path).assert_consumed()
    out["plain_equal"] = max_relative(snapshot(mirrored), snapshot(plain)) == 0.0

    # the training job under the strategy (tiny MVTec-layout category)
    from tests.helpers.images import make_category
    from config import TrainConfig
    from training.loop import train
    from inference.restore import restore_run
    make_category(sys.argv[1] + "/data", "widget", train=10, test={"good": 2, "crack": 2})
    job = TrainConfig(category="widget", data_dir=sys.argv[1] + "/data", run_dir=sys.argv[1] + "/run", steps=3,
                      channels=1, latent_size=8, batch_size=4, image_size=32, d_iter=1, log_every=3,
                      checkpoint_every=2, preview_every=2, threshold_holdout=0.2, strategy="mirrored")
    train(job)
    out["job_step"] = restore_run(job.run_dir).step
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distribution")
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], cwd=REPO, capture_output=True, text=True,
                            timeout=900, env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                                              "PYTHONPATH": str(REPO)})
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(lines[-1][len("RESULT "):]), folder


def assert_losses_close(got, expected, rtol=1e-4):
    assert got[0] == expected[0]
    assert set(got[1]) == set(expected[1])
    for name, value in expected[1].items():
        assert got[1][name] == pytest.approx(value, rel=rtol, abs=1e-6), (expected[0], name)


def test_mirrored_run_uses_two_replicas_with_mirrored_variables(two_replicas):
    out, _ = two_replicas
    assert out["replicas"] == 2
    assert out["variable_type"] == "MirroredVariable"
    assert out["initial_weights_equal"]


def test_mirrored_losses_match_the_single_device_run(two_replicas):
    out, _ = two_replicas
    assert [kind for kind, _ in out["single"]] == ["critic", "generator_encoder"] * 2
    for got, expected in zip(out["mirrored"], out["single"]):
        assert_losses_close(got, expected)
    # not trivially equal: the losses moved between steps
    assert out["single"][0][1]["critic_loss"] != out["single"][2][1]["critic_loss"]


def test_mirrored_weights_and_ema_match_and_replicas_stay_in_sync(two_replicas):
    out, _ = two_replicas
    assert out["weights_max_relative_difference"] < 1e-4
    assert out["replicas_identical"]
    assert out["counters"] == [4, 2, 2, 2]   # step, EMA updates, critic and G/E optimizer iterations: once each


def test_checkpoints_restore_under_the_strategy_and_without_it(two_replicas):
    out, _ = two_replicas
    assert out["resumed_equal"] and out["resumed_rng_equal"] and out["plain_equal"]
    assert_losses_close(out["resumed_next"], out["single_next"])


def test_training_job_under_mirrored_strategy(two_replicas):
    out, folder = two_replicas
    run = folder / "run"
    assert out["job_step"] == 3
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.index")) == ["ckpt-2.index", "ckpt-3.index"]
    assert json.loads((run / "config.json").read_text())["config"]["strategy"] == "mirrored"
    assert any((run / "previews").glob("train_0000002.png"))
    assert (run / "holdout_scores.csv").is_file()
    rows = (run / "train_log.csv").read_text().splitlines()
    assert len(rows) == 2


# ---------------------------------------------------------------- in process (no strategy is created)

def test_config_validates_strategy_and_precision():
    assert tiny_config(strategy="mirrored", precision="mixed_bfloat16").strategy == "mirrored"
    with pytest.raises(ConfigError, match="--strategy"):
        tiny_config(strategy="tpu")
    with pytest.raises(ConfigError, match="--precision"):
        tiny_config(precision="float16")


def test_default_strategy_is_no_strategy():
    assert distributed.make_strategy("default") is None
    assert distributed.replicas(None) == 1
    assert distributed.is_chief(None)


class FakeResolver:
    def __init__(self, task_type, task_id):
        self.task_type, self.task_id = task_type, task_id


class FakeStrategy:
    def __init__(self, task_type, task_id):
        self.cluster_resolver = FakeResolver(task_type, task_id)


@pytest.mark.parametrize("cluster, task_type, task_id, chief", [
    ({"worker": ["a:1", "b:1"]}, "worker", 0, True),
    ({"worker": ["a:1", "b:1"]}, "worker", 1, False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, "chief", 0, True),
    ({"chief": ["c:1"], "worker": ["a:1"]}, "worker", 0, False),
])
def test_chief_of_a_multi_worker_cluster(monkeypatch, cluster, task_type, task_id, chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": task_type, "index": task_id}}))
    assert distributed.is_chief(FakeStrategy(task_type, task_id)) is chief


def test_non_chief_workers_write_to_a_stable_local_folder():
    from training.loop import worker_run_dir
    path = worker_run_dir("runs/sweep/bottle-alpha0.0001/", FakeStrategy("worker", 1))
    assert path.endswith("bottle-alpha0.0001-worker1") and "runs/sweep" not in path
    assert path == worker_run_dir("runs/sweep/bottle-alpha0.0001", FakeStrategy("worker", 1))


def test_resume_takes_the_strategy_from_the_command_line(tmp_path):
    from training.loop import resolve_config
    saved = TrainConfig(category="widget", run_dir=str(tmp_path), strategy="mirrored", channels=1)
    saved.save(tmp_path)
    resumed, resuming = resolve_config(TrainConfig(category="widget", run_dir=str(tmp_path)), ["category"])
    assert resuming and resumed.strategy == "default" and resumed.channels == 1
    resumed, _ = resolve_config(TrainConfig(category="widget", run_dir=str(tmp_path), strategy="mirrored"),
                                ["category", "strategy"])
    assert resumed.strategy == "mirrored"
    with pytest.raises(ConfigError, match="--precision"):   # the precision is part of what is trained
        resolve_config(TrainConfig(category="widget", run_dir=str(tmp_path), precision="mixed_bfloat16"),
                       ["precision"])


def test_local_batch_passes_plain_tensors_through():
    x = np.zeros((2, 3), np.float32)
    assert distributed.local_batch(None, x) is x
