"""`vla-ros train`: tiny synthetic training saves a loadable checkpoint, resumes, takes a YAML config and any
dataset of contract samples, and runs under torchrun (DDP, gloo on CPU)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from vla_ros.core.config import to_dict
from vla_ros.policies.checkpoint_io import load_policy
from vla_ros.policies.factory import tiny_config
from vla_ros.training.synthetic import synthetic_batch
from vla_ros.training.trainer import TrainConfig, train


def _train(*args, torchrun=False, timeout=300):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "vla_ros.cli"] if torchrun else [sys.executable, "-m", "vla_ros.cli"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([*cmd, "train", *args, "--no-progress"], capture_output=True, text=True, timeout=timeout,
                         env=env, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", ["falcon", "spatialvla", "spatialvla_legacy"])
def test_tiny_train_saves_and_resumes(method, tmp_path):
    r = _train("--method", method, "--tiny", "--steps", "6", "--batch-size", "4", "--out", str(tmp_path))
    assert r["step"] == 6 and "val_loss" in r
    policy = load_policy(tmp_path / "checkpoint")
    assert policy.method == method
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    r = _train("--method", method, "--tiny", "--steps", "9", "--batch-size", "4", "--out", str(tmp_path))
    assert r["step"] == 9  # resumed from step 6, not restarted
    resumed = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(resumed) > len(lines) and resumed[:len(lines)] == lines  # a resumed run appends to its log
    r = _train("--method", method, "--tiny", "--steps", "3", "--batch-size", "4", "--out", str(tmp_path), "--no-resume")
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert r["step"] == 3 and max(steps) == 3  # a fresh run starts a fresh log


def test_yaml_config_names_dataset_policy_and_schedule(tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"policy: {{method: spatial_forcing, horizon: 2, method_args: {{align_layer: 1}}}}\n"
                   f"steps: 3\nbatch_size: 2\nlr: 0.001\neval_every: 2\nckpt_every: 2\nseed: 3\nout: {tmp_path}/run\n")
    r = _train("--config", str(cfg))
    assert r["step"] == 3 and "align_loss" in r and "val_loss" in r
    policy = load_policy(tmp_path / "run" / "checkpoint")
    assert policy.method == "spatial_forcing" and policy.config.horizon == 2
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "val_loss" in m] == [2, 3]


def test_bad_config_key_is_named(tmp_path):
    cfg = tmp_path / "train.yaml"
    for text, key in (("policy: {method: falcon}\nstepz: 10\n", "stepz"), ("policy: {method: falcon, horizn: 2}\n",
                                                                          "policy.horizn")):
        cfg.write_text(text)
        out = subprocess.run([sys.executable, "-m", "vla_ros.cli", "train", "--config", str(cfg)],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 1 and key in out.stderr and "Traceback" not in out.stderr


def test_train_takes_any_dataset_of_contract_samples(tmp_path):
    """A map-style Dataset (like vla_ros.data.torch_dataset.EpisodeDataset) of single samples plugs in."""
    pcfg = tiny_config("baseline", horizon=2)
    batch = synthetic_batch(pcfg, 12, seed=0)
    samples = [{k: (v[i] if torch.is_tensor(v) else v[i]) for k, v in batch.items()} for i in range(12)]

    class Samples(torch.utils.data.Dataset):
        def __len__(self):
            return len(samples)

        def __getitem__(self, i):
            return samples[i]

    cfg = TrainConfig(policy=to_dict(pcfg), steps=4, batch_size=4, eval_every=2, ckpt_every=4, out=str(tmp_path))
    r = train(cfg, progress=False, train_data=Samples(), val_data=samples[:4])
    assert r["step"] == 4 and "val_loss" in r
    policy = load_policy(tmp_path / "checkpoint")
    # norm stats were computed from the data: q99 of x is the 99th percentile of the sample targets
    xs = torch.stack([s["action"][:, 0, 0] for s in samples]).flatten().numpy()
    assert abs(policy.norm_stats.stats["action"].q99[0] - float(__import__("numpy").quantile(xs, 0.99))) < 1e-6


@pytest.mark.slow
def test_ddp_two_cpu_processes_with_gloo(tmp_path):
    r = _train("--method", "baseline", "--tiny", "--steps", "4", "--batch-size", "4", "--out", str(tmp_path),
               torchrun=True)
    assert r["step"] == 4
    assert load_policy(tmp_path / "checkpoint").method == "baseline"


def test_init_from_fine_tunes_a_checkpoint_and_names_a_config_mismatch(tmp_path):
    _train("--method", "spatialvla_legacy", "--tiny", "--steps", "4", "--batch-size", "4", "--out", str(tmp_path / "a"))
    base = load_policy(tmp_path / "a" / "checkpoint")
    r = _train("--method", "spatialvla_legacy", "--tiny", "--steps", "2", "--batch-size", "4",
               "--out", str(tmp_path / "b"), "--init-from", str(tmp_path / "a" / "checkpoint"), "--lr", "0")
    assert r["step"] == 2  # a fresh two-step run from the checkpoint (at lr 0 it must come out unchanged)
    tuned = load_policy(tmp_path / "b" / "checkpoint")
    assert tuned.grid.mismatch(base.grid) == ""
    for k, v in base.state_dict().items():
        assert torch.equal(tuned.state_dict()[k], v), k
    cfg = tmp_path / "other.yaml"
    cfg.write_text(f"policy: {{method: spatialvla_legacy, horizon: 2}}\nsteps: 1\nout: {tmp_path}/c\n"
                   f"init_from: {tmp_path}/a/checkpoint\n")
    out = subprocess.run([sys.executable, "-m", "vla_ros.cli", "train", "--config", str(cfg), "--no-progress"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 1 and "policy.horizon" in out.stderr and "Traceback" not in out.stderr


def test_tokenizer_fit_leaves_padded_steps_out():
    """The steps padded past an episode's end repeat its last action; a grid or statistics fitted with them
    would weigh episode ends too much."""
    import torch

    from vla_ros.training.trainer import _actions_for_fit

    action = torch.arange(2 * 4 * 7, dtype=torch.float32).reshape(2, 4, 1, 7)
    pad = torch.tensor([[False, False, True, True], [False, False, False, True]])
    batch = {"action": action, "action_pad": pad}
    rows = _actions_for_fit([batch], lambda: iter([batch] * 2), n_batches=2)
    assert rows.shape == (3 * 5, 7)  # 5 real steps per batch, 3 batches (2 training + 1 validation)
    np.testing.assert_array_equal(rows[:5], action[~pad].reshape(-1, 7).numpy())
