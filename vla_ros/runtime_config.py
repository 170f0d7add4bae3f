"""The robot YAML (config/<robot>.yaml): observation, policy node, executor and adapter sections, validated
at start-up; an unknown key or an out-of-range value is named and the node fails to configure."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from vla_ros.adapters.config import AdapterConfig
from vla_ros.core.config import check, check_range, load_yaml
from vla_ros.core.constants import MODALITY_SETS
from vla_ros.core.executor import ExecutorConfig
from vla_ros.core.sync import ObservationConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

Device = Literal["cpu", "cuda"]
RateMode = Literal["fixed_hz", "on_consumed"]
Precision = Literal["fp32", "bf16"]  # a local model's forward (vla_ros/policies/speed.py)


@dataclass
class PolicyNodeConfig:
    """Args:
    checkpoint: local checkpoint folder. device: cpu or cuda.
    rate_mode: "fixed_hz" (infer at rate_hz) or "on_consumed" (infer as soon as the executor reports the
        previous chunk consumed, at most at rate_hz).
    instruction: default instruction (the latched topic or a parameter change override it).
    modalities: inputs the policy may use (rgb, rgbd, rgbd_pose); what is fresh decides per inference.
    chunk_topic / consumed_topic: ActionChunk output, executor's consumed-chunk signal.
    load_options: options of a released checkpoint's loader (e.g. SpatialVLA `unnorm_key`, `dtype`); see the
        method's README section. Empty for a vla_ros checkpoint folder. For a remote backend talking to a
        foreign server: the layout of its actions (horizon, dt_s, action_reference, rotation_ref_quat_xyzw).
    backend: "local" (load `checkpoint` here), "openpi" (a policy server speaking openpi's websocket protocol,
        e.g. `vla-ros serve` on a GPU host) or "openvla_oft" (OpenVLA-OFT's deploy.py, JSON over HTTP).
    torch_threads: intra-op threads of a local model (torch.set_num_threads, process-wide); 0 = one fewer than
        the cores this process may use (at least 1), leaving a core to the sensor callbacks, the control loop and
        a camera driver on the same machine: on 2 cores, a camera process running beside a 2-thread forward made
        it 1.7x slower, beside a 1-thread forward not at all (`vla-ros bench`, README).
    precision / compile: a local model's forward in bf16 autocast, and through torch.compile ("reduce-overhead":
        CUDA graphs where they fit); fp32 and eager by default (vla_ros/policies/speed.py).
    warmup_runs: inferences on the first valid observation before the first chunk is published (compilation and
        allocator warm-up happen there, not in the first chunk); their time is on /diagnostics.
    url: the server (ws://host:port for openpi, http://host:port/act for openvla_oft).
    api_key: sent as `Authorization: Api-Key <key>` ("" = none). timeout_s: connect and reply timeout.
    key_map: observation field -> the foreign server's key (e.g. {"front.rgb": "observation/image",
        "state": "observation/state", "instruction": "prompt"}); {} = vla_ros's native keys. Fields:
        instruction, state, state_names, ee_pose, stamp_s, <camera>.rgb|depth_m|depth_valid|K|T_base_camera.
    """

    checkpoint: str = ""
    device: Device = "cpu"
    rate_mode: RateMode = "fixed_hz"
    rate_hz: float = 5.0
    instruction: str = ""
    modalities: str = "rgbd_pose"
    chunk_topic: str = "/vla/action_chunk"
    consumed_topic: str = "/vla/chunk_consumed"
    load_options: dict = field(default_factory=dict)
    backend: Literal["local", "openpi", "openvla_oft"] = "local"
    torch_threads: int = 0
    precision: Precision = "fp32"
    compile: bool = False
    warmup_runs: int = 2
    url: str = ""
    api_key: str = ""
    timeout_s: float = 5.0
    key_map: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        check(self.backend == "local" or bool(self.url), "url", self.url, f"backend {self.backend} needs a url")
        check_range("timeout_s", self.timeout_s, 0.01, 600.0)
        check(self.device in get_args(Device), "device", self.device, f"expected one of {list(get_args(Device))}")
        check(self.rate_mode in get_args(RateMode), "rate_mode", self.rate_mode,
              f"expected one of {list(get_args(RateMode))}")
        check_range("rate_hz", self.rate_hz, 0.1, 200.0)
        check_range("torch_threads", self.torch_threads, 0, 1024)
        check(self.precision in get_args(Precision), "precision", self.precision,
              f"expected one of {list(get_args(Precision))}")
        check_range("warmup_runs", self.warmup_runs, 0, 100)

    def cpu_threads(self) -> int:
        """The intra-op thread count `torch_threads` asks for on this machine."""
        if self.torch_threads:
            return self.torch_threads
        return max(1, len(os.sched_getaffinity(0)) - 1)
        check(self.modalities in MODALITY_SETS, "modalities", self.modalities, f"one of {list(MODALITY_SETS)}")


@dataclass
class RuntimeConfig:
    robot: str = "franka"
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    policy: PolicyNodeConfig = field(default_factory=PolicyNodeConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)

    def __post_init__(self):
        check(self.executor.base_frame == self.observation.base_frame, "executor.base_frame",
              self.executor.base_frame, f"must equal observation.base_frame {self.observation.base_frame!r}")
        check(self.executor.chunk_topic == self.policy.chunk_topic, "executor.chunk_topic", self.executor.chunk_topic,
              f"must equal policy.chunk_topic {self.policy.chunk_topic!r} (the executor would receive no chunk)")
        check(len(self.adapter.command_topics) == len(self.executor.arm_names), "adapter.command_topics",
              self.adapter.command_topics, f"need one per arm {self.executor.arm_names}")
        from vla_ros.adapters.registry import adapter_class

        n = adapter_class(self.adapter.robot).gripper_topics_needed(len(self.executor.arm_names))
        check(n is None or len(self.adapter.gripper_topics) == n, "adapter.gripper_topics", self.adapter.gripper_topics,
              f"{self.adapter.robot} with {len(self.executor.arm_names)} arm(s) needs {n}")


def resolve_config_path(name_or_path: str) -> Path:
    """`franka` -> config/franka.yaml of a checkout, else share/vla_ros/config of a colcon install; a path is
    taken as is."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    local = CONFIG_DIR / f"{name_or_path}.yaml"
    if local.exists():
        return local
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("vla_ros")) / "config" / f"{name_or_path}.yaml"
    except (ImportError, LookupError):
        return local


def load_runtime_config(name_or_path: str) -> RuntimeConfig:
    return load_yaml(RuntimeConfig, resolve_config_path(name_or_path))
