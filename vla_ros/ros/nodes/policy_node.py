"""Policy node (GPU side), a lifecycle node: `configure` loads the YAML and the checkpoint, `activate` starts
inference on a worker thread (never in a sensor callback), `deactivate` stops publishing, `cleanup` frees the
model and GPU memory. A bad checkpoint or config fails `configure` with a clear error; the node stays up,
unconfigured, and can be configured again.

Publishes vla_ros/ActionChunk stamped with the observation time, and /diagnostics (latency, rates, dropped and
stale observations with their reasons, modality used). The instruction comes from the latched topic, the
`instruction` parameter, or a change of that parameter at run time.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from std_msgs.msg import UInt64

from vla_ros.core.config import ConfigError, override
from vla_ros.core.constants import MODALITY_SETS
from vla_ros.msg import ActionChunk as ActionChunkMsg
from vla_ros.ros import qos
from vla_ros.ros.chunk_msg import chunk_to_msg
from vla_ros.ros.diagnostics import status_array
from vla_ros.runtime_config import RuntimeConfig, load_runtime_config


def timing_breakdown_ms(timings) -> dict[str, float]:
    """Medians (ms) of each stage of recent chunks, and pipeline_overhead = end to end - observation age when
    picked - model forward (what the pipeline itself costs, the camera's frame period and the model aside)."""
    timings = list(timings)
    if not timings:
        return {}
    out = {k: 1e3 * float(np.median([t[k] for t in timings if k in t])) for k in timings[-1]}
    over = [t["end_to_end"] - t["obs_age_at_pick"] - t.get("forward", 0.0) for t in timings]
    out["pipeline_overhead"] = 1e3 * float(np.median(over))
    return out


class PolicyNode(LifecycleNode):
    def __init__(self, config: RuntimeConfig | None = None, **kwargs):
        super().__init__("vla_policy", **kwargs)
        self._given_config = config
        p = self.declare_parameter
        p("config", "franka", ParameterDescriptor(description="robot config name or YAML path", read_only=True))
        p("checkpoint", "", ParameterDescriptor(description="local checkpoint folder (overrides the YAML)"))
        p("instruction", "", ParameterDescriptor(description="task instruction; may be changed at run time"))
        p("device", "", ParameterDescriptor(description="cpu or cuda (overrides the YAML)"))
        p("modalities", "", ParameterDescriptor(description="rgb | rgbd | rgbd_pose (overrides the YAML)"))
        p("backend", "", ParameterDescriptor(description="local | openpi | openvla_oft (overrides the YAML)"))
        p("url", "", ParameterDescriptor(description="policy server URL for a remote backend (overrides the YAML)"))
        p("esm", "", ParameterDescriptor(description="a released FALCON checkpoint's ESM folder "
                                                     "(policy.load_options.esm)", read_only=True))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.chunk_pub = None
        self.policy = None
        self.frontend = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._consumed = threading.Event()
        self._entities = []
        self.stats: Counter[str] = Counter()
        self.latency_s: deque[float] = deque(maxlen=200)
        self.model_s: deque[float] = deque(maxlen=200)
        self.timing_s: deque[dict] = deque(maxlen=200)  # per chunk: where the time from observation to publish went
        self.publish_times: deque[float] = deque(maxlen=50)
        self.last_reasons: list[str] = []
        self.last_modalities: tuple[str, ...] = ()
        self.last_error = ""
        self.warmup_s = 0.0
        self.seq = 0

    # --- parameters ---------------------------------------------------------------------------------
    def _on_set_parameters(self, params) -> SetParametersResult:
        for prm in params:
            if prm.name == "modalities" and prm.value and prm.value not in MODALITY_SETS:
                allowed = list(MODALITY_SETS)
                return SetParametersResult(successful=False, reason=f"modalities: expected one of {allowed}")
            if prm.name == "device" and prm.value not in ("", "cpu", "cuda"):
                return SetParametersResult(successful=False, reason="device: expected cpu or cuda")
            if prm.name == "instruction" and self.frontend is not None and prm.value:
                self.frontend.set_instruction(prm.value)
        return SetParametersResult(successful=True)

    # --- lifecycle ----------------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # a bad file must leave the node alive and unconfigured
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"configure failed: {self.last_error}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        from vla_ros.policies.checkpoint_io import load_policy
        from vla_ros.policies.speed import accelerate
        from vla_ros.ros.observation_frontend import ObservationFrontend

        cfg = self._given_config or load_runtime_config(self.get_parameter("config").value)
        overrides = {k: self.get_parameter(k).value for k in ("checkpoint", "instruction", "device", "modalities",
                                                                 "backend", "url")}
        pol = {k: v for k, v in overrides.items() if v}
        if self.get_parameter("esm").value:
            pol["load_options"] = {**cfg.policy.load_options, "esm": self.get_parameter("esm").value}
        cfg.policy = override(cfg.policy, pol, "policy")
        if cfg.policy.backend == "local" and not cfg.policy.checkpoint:
            raise ConfigError("policy.checkpoint: no checkpoint given (parameter `checkpoint` or the YAML)")
        self.cfg = cfg
        if cfg.policy.backend == "local" and cfg.policy.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("policy.device: cuda is configured but torch sees no CUDA device (use device:=cpu)")
        if cfg.policy.backend == "local":
            import cv2
            import torch

            torch.set_num_threads(cfg.policy.cpu_threads())  # and OpenCV's resizes in pre-processing, likewise
            cv2.setNumThreads(cfg.policy.cpu_threads())
            self.policy = load_policy(cfg.policy.checkpoint, cfg.policy.device, cfg.policy.load_options)
            accelerate(self.policy, cfg.policy.precision, cfg.policy.compile)
        else:  # a policy server on another machine (vla_ros/serving/remote.py); fails here if it is down
            from vla_ros.serving.remote import make_remote_policy

            self.policy = make_remote_policy(cfg.policy, cfg.executor.arm_names, cfg.observation.joint_names,
                                             [c.name for c in cfg.observation.cameras])
        pc = self.policy.config
        if list(pc.arm_names) != list(cfg.executor.arm_names):
            raise ConfigError(f"checkpoint arms {pc.arm_names} != robot arms {cfg.executor.arm_names}")
        joints = list(cfg.observation.joint_names)
        if pc.proprio_names:
            lacking = [n for n in pc.proprio_names if n not in joints]
            if lacking:
                raise ConfigError(f"checkpoint reads joints {lacking} that observation.joint_names {joints} lacks")
        elif getattr(self.policy, "READS_PROPRIO", True) and pc.proprio_dim and pc.proprio_dim != len(joints):
            raise ConfigError(f"checkpoint proprio_dim {pc.proprio_dim} != {len(joints)} configured joints")
        sensors = ReentrantCallbackGroup()
        before = set(self.subscriptions)
        self.frontend = ObservationFrontend(self, cfg.observation, sensors)
        if cfg.policy.instruction:
            self.frontend.set_instruction(cfg.policy.instruction)
        self.chunk_pub = self.create_lifecycle_publisher(ActionChunkMsg, cfg.policy.chunk_topic, qos.RELIABLE)
        self._entities += [self.create_subscription(UInt64, cfg.policy.consumed_topic, lambda m: self._consumed.set(),
                                                    qos.RELIABLE, callback_group=sensors),
                           self.create_timer(1.0, self._diagnostics, callback_group=MutuallyExclusiveCallbackGroup())]
        self._entities += list(set(self.subscriptions) - before - set(self._entities))
        where = cfg.policy.checkpoint if cfg.policy.backend == "local" else cfg.policy.url
        device = cfg.policy.device if cfg.policy.backend == "local" else "the server"
        self.get_logger().info(f"configured: {self.policy.method} from {where} on {device}")

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._stop.clear()
        self._worker = threading.Thread(target=self._loop, name="vla_inference", daemon=True)
        self._worker.start()
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        if not self._stop_worker():
            return TransitionCallbackReturn.FAILURE
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        if not self._stop_worker():
            return TransitionCallbackReturn.FAILURE
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        if self._stop_worker():  # never free the model under an inference still running
            self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_worker(self, timeout_s: float = 10.0) -> bool:
        """Stop the inference worker; False (logged) if it is still inside an inference after `timeout_s`."""
        self._stop.set()
        self._consumed.set()
        if self.frontend is not None:
            self.frontend.frame_ready.set()
        if self._worker is not None:
            self._worker.join(timeout=timeout_s)
            if self._worker.is_alive():
                self.get_logger().error(f"the inference worker did not stop within {timeout_s} s (an inference "
                                        "still running); the model is kept until it does")
                return False
            self._worker = None
        return True

    def _release(self) -> None:
        """Drop the model, subscriptions and publishers; free GPU memory."""
        self.frontend = None
        for ent in self._entities:
            if hasattr(ent, "cancel"):
                ent.cancel()
                self.destroy_timer(ent)
            else:
                self.destroy_subscription(ent)
        self._entities = []
        if getattr(self, "chunk_pub", None) is not None:
            self.destroy_lifecycle_publisher(self.chunk_pub)
            self.chunk_pub = None
        if self.policy is not None:
            device = str(getattr(self.policy, "device", "cpu"))
            getattr(self.policy, "close", lambda: None)()  # a remote backend's connection
            self.policy = None
            if device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()

    # --- inference ----------------------------------------------------------------------------------
    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _loop(self) -> None:
        period = 1.0 / self.cfg.policy.rate_hz
        on_consumed = self.cfg.policy.rate_mode == "on_consumed"
        horizon_s = self.policy.config.horizon * self.policy.config.dt_s
        next_t = time.monotonic()
        last_stamp, last_instruction = None, None
        warmed = self.cfg.policy.backend != "local" or self.cfg.policy.warmup_runs == 0
        while not self._stop.is_set():
            if on_consumed and self.seq > 0:
                self._consumed.wait(timeout=horizon_s)  # the executor says when; fall back to the chunk length
                self._consumed.clear()
            delay = next_t - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            next_t = max(next_t + period, time.monotonic())
            # Pick the next frame as it lands (at most one camera period later) rather than whatever frame is
            # newest now, up to a period old; if none comes, assemble anyway and the staleness check speaks.
            self.frontend.frame_ready.clear()
            if self._stop.is_set() or (self.frontend.frame_ready.wait(self.cfg.observation.max_age.rgb_s)
                                       and self._stop.is_set()):
                break
            t_pick = self.now_s()
            obs = self.frontend.latest(t_pick)
            self.last_reasons = obs.reasons
            if not obs.valid:
                self.stats["invalid_observations"] += 1
                for reason in obs.reasons:  # each cause logged when it first appears, then every few seconds
                    self.frontend.warn(f"observation refused: {reason}")
                continue
            if last_stamp is not None and obs.stamp_s <= last_stamp:
                self.stats["repeated_observations"] += 1
                continue
            last_stamp = obs.stamp_s
            if not warmed:
                warmed = True
                if self._warm_up(obs):
                    continue  # that observation is old now: pick a fresh one
            if obs.instruction != last_instruction:  # a new task: forget the policy's history (LSTM, ensembler)
                self.policy.reset()
                last_instruction = obs.instruction
            t_infer = self.now_s()
            try:
                chunk = self.policy.infer(obs, MODALITY_SETS[self.cfg.policy.modalities])
            except Exception as exc:
                self.stats["inference_errors"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"inference failed: {self.last_error}", throttle_duration_sec=2.0)
                continue
            chunk.seq = self.seq
            self.seq += 1
            msg = chunk_to_msg(chunk, self.cfg.observation.base_frame)
            t_pub = self.now_s()
            if self.chunk_pub is not None:
                self.chunk_pub.publish(msg)
            now = self.now_s()
            timing = getattr(self.policy, "last_timing_s", {})
            self.timing_s.append({"obs_age_at_pick": t_pick - obs.stamp_s, "assemble": t_infer - t_pick,
                                  **timing, "publish": now - t_pub, "end_to_end": now - obs.stamp_s})
            self.latency_s.append(now - obs.stamp_s)
            self.model_s.append(chunk.inference_latency_s)
            self.publish_times.append(now)
            self.last_modalities = chunk.modalities
            self.stats["chunks"] += 1
            self.stats["modality_" + "+".join(chunk.modalities)] += 1

    def _warm_up(self, obs) -> bool:
        """`policy.warmup_runs` inferences on the first valid observation, published nowhere: torch.compile
        compiles and the allocator and caches warm up here rather than in the first chunk. False if one failed
        (the loop then reports it as an inference error)."""
        t0 = time.monotonic()
        try:
            for _ in range(self.cfg.policy.warmup_runs):
                self.policy.infer(obs, MODALITY_SETS[self.cfg.policy.modalities])
        except Exception as exc:
            self.get_logger().error(f"warm-up inference failed: {type(exc).__name__}: {exc}")
            return False
        finally:
            self.policy.reset()
        self.warmup_s = time.monotonic() - t0
        self.get_logger().info(f"warm-up: {self.cfg.policy.warmup_runs} inferences in {self.warmup_s:.2f} s")
        return True

    def _diagnostics(self) -> None:
        rate = 0.0
        if len(self.publish_times) > 1:
            rate = (len(self.publish_times) - 1) / max(self.publish_times[-1] - self.publish_times[0], 1e-9)
        values = {"chunks": self.stats["chunks"], "rate_hz": rate, "warmup_s": self.warmup_s,
                  "latency_ms_median": 1e3 * float(np.median(self.latency_s)) if self.latency_s else float("nan"),
                  "model_ms_median": 1e3 * float(np.median(self.model_s)) if self.model_s else float("nan"),
                  "modalities": "+".join(self.last_modalities), **{k: v for k, v in self.stats.items()},
                  **{f"{k}_ms_median": v for k, v in timing_breakdown_ms(self.timing_s).items()}}
        if self.frontend is not None:
            stats = self.frontend.stats()
            values.update({f"rejected/{k}": v for k, v in stats["rejected"].items()})
            values.update({f"delivered_fraction/{k}": v for k, v in stats["delivered_fraction"].items()})
        values.update(getattr(self.policy, "diagnostics", dict)())  # a remote backend: link, retries, round trip
        lost = values.get("remote/connected") is False
        level = "ok" if not self.last_reasons and not lost else "warn"
        reasons = self.last_reasons + ([f"policy server lost: {values['remote/last_error']}"] if lost else [])
        self.diag_pub.publish(status_array(self, "vla_ros: policy", level, "; ".join(reasons) or "ok", values))


def main(args=None) -> int:
    from vla_ros.ros.spin import spin_node

    return spin_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
