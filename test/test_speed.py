"""policy.precision / policy.compile (vla_ros/policies/speed.py): the wrapped forward gives the eager fp32 one's
actions, within bf16's resolution for bf16; a bad precision in the YAML is named."""
import numpy as np
import pytest
import torch

from vla_ros.core.config import ConfigError, from_dict
from vla_ros.policies.factory import make_policy, tiny_config
from vla_ros.policies.speed import accelerate
from vla_ros.runtime_config import PolicyNodeConfig
from vla_ros.training.synthetic import synthetic_batch, synthetic_norm_stats


def _policy_and_batch(method="baseline"):
    torch.manual_seed(0)
    cfg = tiny_config(method)
    return make_policy(cfg, synthetic_norm_stats(cfg)).eval(), synthetic_batch(cfg, 1, seed=0)


def _actions(policy, batch):
    with torch.no_grad():
        return policy.predict_actions(batch, ("rgb",)).numpy()


def test_bf16_autocast_matches_fp32_within_bf16_resolution():
    policy, batch = _policy_and_batch()
    ref = _actions(policy, batch)
    accelerate(policy, "bf16")
    out = _actions(policy, batch)
    assert out.dtype == np.float32 and out.shape == ref.shape
    scale = np.abs(ref).max() + 1e-6
    assert np.abs(out - ref).max() / scale < 0.05
    assert not np.array_equal(out, ref)  # the forward did run in bf16


@pytest.mark.slow
def test_compiled_forward_matches_eager():
    """Compiled, the forward gives the eager one's actions, on the batch it was compiled with and on another."""
    policy, batch = _policy_and_batch()
    eager, _ = _policy_and_batch()
    accelerate(policy, "fp32", compile=True)
    other = synthetic_batch(policy.config, 1, seed=1)
    for b in (batch, other):
        np.testing.assert_allclose(_actions(policy, b), _actions(eager, b), atol=1e-5)
    assert not np.allclose(_actions(eager, batch), _actions(eager, other))  # the two inputs do differ


def test_a_bad_precision_is_named():
    with pytest.raises(ConfigError, match="precision"):
        from_dict(PolicyNodeConfig, {"precision": "fp16"})
    with pytest.raises(ConfigError, match="warmup_runs"):
        from_dict(PolicyNodeConfig, {"warmup_runs": -1})
