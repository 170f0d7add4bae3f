"""ESM geometry pretraining on simulator frames: the losses fall, the folder describes itself and loads into
FALCON (and as Spatial Forcing's teacher) by key, and a mismatching config is named."""
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco")

from vla_ros.policies.spatial_model.esm import ESMConfig, StateDictMismatch  # noqa: E402
from vla_ros.training.esm_pretrain import ESMPretrainConfig, pretrain  # noqa: E402

TINY = dict(embed_dim=32, heads=2, depth=2, patch_size=8, img_size=32, dino_depth=1, camera_head=True,
            depth_head=True, pose_frame="base", dpt_features=8, dpt_out_channels=[8, 8, 16, 16], head_heads=2,
            input_convention="legacy")


@pytest.fixture(scope="module")
def sim_dataset(tmp_path_factory):
    from vla_ros.sim.demos import generate
    from vla_ros.sim.env import SimConfig

    out = tmp_path_factory.mktemp("demos") / "ds"
    generate(out, 3, seed=0, config=SimConfig(width=64, height=48), progress=False)
    return out


def test_pretraining_learns_depth_and_pose_and_saves_a_loadable_folder(sim_dataset, tmp_path):
    cfg = ESMPretrainConfig(esm=ESMConfig(**TINY), dataset=str(sim_dataset), out=str(tmp_path / "esm"),
                            image_size=32, steps=40, batch_size=16, lr=2e-3, eval_every=20)
    last = pretrain(cfg, progress=False)
    rows = [r for r in map(__import__("json").loads, (tmp_path / "esm" / "metrics.jsonl").read_text().splitlines())]
    first = rows[0]
    assert last["depth_mae_m"] < 0.7 * first["depth_mae_m"] and last["cam_t_err_m"] < first["cam_t_err_m"]
    assert np.isfinite(last["val_depth_mae_m"]) and (tmp_path / "esm" / "model.safetensors").is_file()

    from vla_ros.policies.factory import make_policy, tiny_config

    falcon_esm = {k: v for k, v in TINY.items() if k not in ("camera_head", "depth_head")}
    policy = make_policy(tiny_config("falcon", image_size=32, proprio_dim=8, method_args={"architecture": "compact",
        "esm": {**falcon_esm, "camera_head": False, "depth_head": False},
        "esm_checkpoint": str(tmp_path / "esm")}))
    missing, unexpected = policy.esm_load_report
    assert not missing and unexpected and all(k.split(".")[0] in ("camera_head", "depth_head") for k in unexpected)
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "esm" / "model.safetensors"))
    k = "aggregator.pose_embedding.weight"
    torch.testing.assert_close(policy.esm.state_dict()[k], saved[k])

    with pytest.raises(StateDictMismatch, match="esm.pose_frame"):
        make_policy(tiny_config("falcon", image_size=32, proprio_dim=8, method_args={"architecture": "compact",
            "esm": {**falcon_esm, "camera_head": False, "depth_head": False, "pose_frame": "first_camera"},
            "esm_checkpoint": str(tmp_path / "esm")}))
    with pytest.raises(StateDictMismatch, match="esm.embed_dim"):
        make_policy(tiny_config("falcon", image_size=32, proprio_dim=8, method_args={"architecture": "compact",
            "esm": {**falcon_esm, "embed_dim": 64, "camera_head": False, "depth_head": False},
            "esm_checkpoint": str(tmp_path / "esm")}))


def test_pretrain_config_names_bad_keys():
    from vla_ros.core.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="esm.camera_head"):
        from_dict(ESMPretrainConfig, {"dataset": "x", "esm": {"camera_head": False}})
    with pytest.raises(ConfigError, match="p_drop_depth"):
        from_dict(ESMPretrainConfig, {"dataset": "x", "p_drop_depth": 2.0})
