"""--precision (models/distributed.precision_policy, loss scaling in models/cbigan.py, training/loop.py).

Runs in a subprocess so no Keras dtype policy can reach the other tests: mixed_bfloat16 trains a few finite
steps with float32 weights and bfloat16 convolutions, losses and the gradient penalty in float32, and the
global policy is left as it was; mixed_float16 wraps both optimizers in LossScaleOptimizer and its checkpoints
restore into the float32 model evaluate.py builds; the training job trains and scores under mixed_bfloat16.
"""
import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import REPO

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    import tensorflow as tf
    from models.cbigan import CBiGAN
    from tests.helpers.config import tiny_config

    out = {}
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)), tf.float32)

    def all_variables(model):
        return (model.encoder.weights + model.generator.weights + model.critic.weights + model.ema_encoder.weights
                + model.ema_generator.weights + model.critic_optimizer.variables + model.ge_optimizer.variables)

    model = CBiGAN(tiny_config(d_iter=1, precision="mixed_bfloat16"), 32, precision="mixed_bfloat16")
    out["policy_after_build"] = keras.mixed_precision.global_policy().name
    conv = model.encoder.trunk.blocks[0].conv1
    out["conv_dtypes"] = [conv.compute_dtype, conv.variable_dtype, conv.kernel.dtype]
    out["critic_conv_compute"] = model.critic.trunk.blocks[0].conv1.compute_dtype
    out["output_dtypes"] = [model.encoder(x).dtype.name, model.generator(tf.zeros([4, 8])).dtype.name,
                            model.critic([x, tf.zeros([4, 8])]).dtype.name]
    steps = [model.train_batch(x) for _ in range(3)]       # critic, G/E, critic
    out["bf16_kinds"] = [kind for kind, _ in steps]
    out["bf16_losses"] = [{k: float(v) for k, v in r.items()} for _, r in steps]
    out["bf16_loss_dtypes"] = sorted({v.dtype.name for _, r in steps for v in r.values()})
    out["bf16_variable_dtypes"] = sorted({v.dtype if isinstance(v.dtype, str) else v.dtype.name
                                          for v in all_variables(model) if "float" in str(v.dtype)})
    out["bf16_ema_updates"] = int(model.ema_updates.numpy())

    half = CBiGAN(tiny_config(d_iter=1, precision="mixed_float16"), 32, precision="mixed_float16")
    out["fp16_optimizers"] = [type(half.critic_optimizer).__name__, type(half.ge_optimizer).__name__]
    out["fp16_conv_compute"] = half.encoder.trunk.blocks[0].conv1.compute_dtype
    steps = [half.train_batch(x) for _ in range(4)]        # C G C G
    out["fp16_losses"] = [{k: float(v) for k, v in r.items()} for _, r in steps]
    out["fp16_iterations"] = [int(half.critic_optimizer.iterations.numpy()), int(half.ge_optimizer.iterations.numpy())]
    out["fp16_loss_scales"] = [float(half.critic_optimizer.dynamic_scale.numpy()),
                               float(half.ge_optimizer.dynamic_scale.numpy())]
    path = half.checkpoint().write(sys.argv[1] + "/ckpt")
    evaluation = CBiGAN(tiny_config(d_iter=1, precision="mixed_float16", seed=7), 32)   # as restore_run builds it
    evaluation.checkpoint().read(path).assert_consumed()
    out["fp16_restored_in_float32"] = [evaluation.encoder.trunk.blocks[0].conv1.compute_dtype,
        all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(half.encoder.weights, evaluation.encoder.weights))]

    from tests.helpers.images import make_category
    from config import TrainConfig
    make_category(sys.argv[1] + "/data", "widget", train=10, test={"good": 2, "crack": 2})
    job = TrainConfig(category="widget", data_dir=sys.argv[1] + "/data", run_dir=sys.argv[1] + "/run", steps=2,
                      channels=1, latent_size=8, batch_size=4, image_size=32, d_iter=1, log_every=2,
                      checkpoint_every=2, preview_every=0, threshold_holdout=0.2, precision="mixed_bfloat16")
    from training.loop import TrainingJob
    trained = TrainingJob(job)
    trained.run()
    out["policy_after_job"] = keras.mixed_precision.global_policy().name
    out["job_scoring_conv_compute"] = trained._scoring_model().encoder.trunk.blocks[0].conv1.compute_dtype
    out["job_training_conv_compute"] = trained.model.encoder.trunk.blocks[0].conv1.compute_dtype
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("precision")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], cwd=REPO, capture_output=True, text=True,
                            timeout=900, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(lines[-1][len("RESULT "):]), folder


def all_finite(rows):
    return all(value == value and abs(value) != float("inf") for row in rows for value in row.values())


def test_bfloat16_computes_in_bfloat16_with_float32_weights_and_outputs(mixed):
    out, _ = mixed
    assert out["conv_dtypes"] == ["bfloat16", "float32", "float32"]
    assert out["critic_conv_compute"] == "bfloat16"
    assert out["output_dtypes"] == ["float32"] * 3      # the final layers of E, G and D
    assert out["bf16_variable_dtypes"] == ["float32"]   # networks, EMA copies and optimizer slots


def test_bfloat16_steps_are_finite_with_float32_losses(mixed):
    out, _ = mixed
    assert out["bf16_kinds"] == ["critic", "generator_encoder", "critic"]
    assert all_finite(out["bf16_losses"])
    assert out["bf16_loss_dtypes"] == ["float32"]       # incl. the gradient penalty and the L1 sums
    assert out["bf16_losses"][0]["gradient_penalty"] > 0
    assert out["bf16_ema_updates"] == 1


def test_the_policy_does_not_leak(mixed):
    out, _ = mixed
    assert out["policy_after_build"] == "float32"
    assert out["policy_after_job"] == "float32"


def test_float16_uses_loss_scaling(mixed):
    out, _ = mixed
    assert out["fp16_optimizers"] == ["LossScaleOptimizer", "LossScaleOptimizer"]
    assert out["fp16_conv_compute"] == "float16"
    assert all_finite(out["fp16_losses"])
    # dynamic loss scaling: each update is applied, or skipped with the scale halved (float16 overflow; the
    # critic's double backpropagation through the gradient penalty overflows at the initial scale 2^15)
    for iterations, scale in zip(out["fp16_iterations"], out["fp16_loss_scales"]):
        assert iterations + math.log2(2.0 ** 15 / scale) == 2
    assert sum(out["fp16_iterations"]) >= 3
    assert out["fp16_restored_in_float32"] == ["float32", True]


def test_training_job_under_bfloat16(mixed):
    out, folder = mixed
    run = folder / "run"
    assert json.loads((run / "config.json").read_text())["config"]["precision"] == "mixed_bfloat16"
    assert (run / "checkpoints" / "ckpt-2.index").is_file()
    assert (run / "holdout_scores.csv").is_file()
    # trained in bfloat16, scored (threshold, previews) in float32 like evaluate.py and predict.py
    assert (out["job_training_conv_compute"], out["job_scoring_conv_compute"]) == ("bfloat16", "float32")
