"""Where the time of one training update or one scoring batch goes: TensorFlow's profiler, summed by op type.

    python -m bench.profile_ops                              # critic update, objects (128 px), batch 32
    python -m bench.profile_ops --what=generator_encoder --setting=texture --top=15
    python -m bench.profile_ops --what=scoring

Prints JSON lines: one {"bench": "profile_ops", "kind": "op_type", ...} per op type (ms per call of the
update, summed over threads, share of all op time), then the --top single ops by name ("kind": "op"). Random
weights and data, batch 32, default config; --steps calls are profiled after 3 warm-up calls. Op times are
summed over the threads that ran them, so they add up to more than the wall time on a multi-core machine.
Reads the profile with the XSpace protobuf that ships inside TensorFlow; nothing else to install.
"""
import argparse
import collections
import glob
import os
import sys
import tempfile

from bench._common import emit

SIDES = {"object": 128, "texture": 64}
WHATS = ("critic", "generator_encoder", "scoring")


def op_times(xspace_path):
    """{op name: total ms, ...} and {op type: total ms} of the TensorFlow ops in an .xplane.pb file."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xspace_path, "rb") as f:
        space.ParseFromString(f.read())
    by_op, by_type = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name or " " in name:  # executor/threadpool regions, not ops
                    continue
                op_name, op_type = name.rsplit(":", 1)
                by_op[name] += event.duration_ps / 1e9
                by_type[op_type] += event.duration_ps / 1e9
    return by_op, by_type


def profile(what, setting, steps, batch_size):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if what == "scoring":
        from runtime_threads import configure_threads
        configure_threads()  # the threads evaluate.py scores with
    import numpy as np
    import tensorflow as tf

    from config import TrainConfig
    from models.scoring import Scorer
    from models.cbigan import CBiGAN

    side = SIDES[setting]
    model = CBiGAN(TrainConfig(category="bench", batch_size=batch_size), side)
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch_size, side, side, 3)).astype(np.float32))
    if what == "scoring":
        call = Scorer(model).score_batch
    else:
        call = model.critic_step if what == "critic" else model.generator_encoder_step

    def run():
        return [value.numpy() for value in call(x).values()]  # waits for completion

    for _ in range(3):
        run()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            run()
        tf.profiler.experimental.stop()
        paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        if not paths:
            raise SystemExit("profile_ops: the profiler wrote no .xplane.pb file")
        return op_times(paths[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=WHATS, default="critic")
    parser.add_argument("--setting", choices=tuple(SIDES), default="object")
    parser.add_argument("--steps", type=int, default=5, help="profiled calls after 3 warm-up calls")
    parser.add_argument("--top", type=int, default=10, help="single ops to list, slowest first")
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()
    if args.steps < 1 or args.top < 0 or args.batch_size < 1:
        parser.error("--steps and --batch_size must be positive, --top not negative")
    by_op, by_type = profile(args.what, args.setting, args.steps, args.batch_size)
    total = sum(by_type.values())
    common = {"bench": "profile_ops", "what": args.what, "setting": args.setting, "batch_size": args.batch_size}
    for op_type, ms in by_type.most_common():
        emit({**common, "kind": "op_type", "op_type": op_type, "ms_per_call": round(ms / args.steps, 2),
              "share": round(ms / total, 3)})
    for name, ms in by_op.most_common(args.top):
        emit({**common, "kind": "op", "op": name, "ms_per_call": round(ms / args.steps, 2),
              "share": round(ms / total, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
