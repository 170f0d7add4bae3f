"""Load a released FALCON checkpoint (FALCON-VLA/FALCON-series) from local files: the PyTorch Lightning `.ckpt`
(`state_dict` with keys under `model.`, `hyper_parameters.configs` = the RoboVLMs config) plus the esm-1b ESM
folder (`esm/`: safetensors, VGGT-1B minus the point and track heads plus FALCON's 4 aggregator entries).

Every key must match: the .ckpt covers model.backbone.*, model.action_token and model.act_head.* (the
ESM's `model.act_head.vggt_net.*` may be in the .ckpt too; if so it is loaded and wins over the esm folder, as in
the reference, where the .ckpt is loaded after the ESM); the ESM folder covers act_head.vggt_net.* completely.
Anything missing or unexpected raises `ReleasedCheckpointError` naming the keys.

load_options: esm (ESM folder or .safetensors file; needed unless the .ckpt holds the ESM), kosmos2 (a local
Kosmos-2 folder: config.json + tokenizer; default: the .ckpt's vlm path if it exists here), dtype ("float32" |
"bfloat16"; default: the .ckpt's trainer precision), and where the .ckpt carries no hyper-parameters (or to
override): head ("fc" | "lstm"), chunk, window, use_esm; the action mapping: action_norm, norm_bounds,
statistics (a dataset_statistics JSON, e.g. FALCON's configs/data/oxe_dataset_stats/dataset_statistics_bridge.json)
with unnorm_key, rotation, camera, dt_s, action_reference, name, camera_gt_pt, depth_gt_pt; card (a shipped
card's name, see cards/, or a card YAML: its name, action_reference, dt_s and `run` are the defaults; the schema:
vla_ros/policies/cards.py); trust_pickle (allow a full pickle load of the .ckpt).
"""
from __future__ import annotations

import contextlib
import json
import pickle
from pathlib import Path

import torch

from vla_ros.core.config import ConfigError, from_dict

HEAD_TYPES = {"FCDecoder_ESM": ("fc", True), "FCDecoder": ("fc", False), "LSTMDecoder_ESM": ("lstm", True),
              "LSTMDecoder": ("lstm", False)}
KNOWN_OPTIONS = {"esm", "kosmos2", "dtype", "head", "chunk", "window", "use_esm", "action_norm", "norm_bounds",
                 "statistics", "unnorm_key", "rotation", "camera", "dt_s", "action_reference", "name",
                 "camera_gt_pt", "depth_gt_pt", "card", "trust_pickle", "image_size"}


class ReleasedCheckpointError(ValueError):
    """The released FALCON files do not fit the model; the message names the keys or the file."""


def _ckpt_file(path: Path) -> Path | None:
    if path.is_file() and path.suffix == ".ckpt":
        return path
    if path.is_dir() and not (path / "config.yaml").exists():
        found = sorted(path.glob("*.ckpt")) or sorted(path.glob("ckpts/*.ckpt"))
        if len(found) == 1:
            return found[0]
    return None


def is_released(path: Path) -> bool:
    """A Lightning .ckpt file, or a folder with exactly one (directly or under ckpts/) and no vla_ros config."""
    return _ckpt_file(Path(path)) is not None


def read_ckpt(path: Path, trust_pickle: bool = False) -> dict:
    """torch.load of the .ckpt (weights-only unpickling unless trust_pickle)."""
    if path is None or not Path(path).is_file():
        raise ReleasedCheckpointError(f"{path}: no FALCON .ckpt file (a .ckpt, or a folder with exactly one)")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=not trust_pickle, mmap=True)
    except pickle.UnpicklingError as exc:  # what weights-only loading raises on other objects
        raise ReleasedCheckpointError(f"{path}: holds objects beyond weights ({exc}); pass "
                                      "load_options.trust_pickle: true only for a file you trust") from None
    except (RuntimeError, OSError, EOFError) as exc:  # a truncated or corrupt file
        raise ReleasedCheckpointError(f"{path}: not a readable checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict", ckpt.get("model_state_dict")), dict):
        raise ReleasedCheckpointError(f"{path}: no `state_dict` (a FALCON Lightning checkpoint has one)")
    return ckpt


def _hparams(ckpt: dict) -> dict:
    hp = ckpt.get("hyper_parameters") or {}
    return dict(hp.get("configs", hp)) if isinstance(hp, dict) else {}


def reference_settings(hp: dict, opts: dict) -> dict:
    """FalconReferenceArgs + policy fields from the .ckpt's RoboVLMs config, overridden by load_options."""
    act = dict(hp.get("act_head") or {})
    out: dict = {}
    if act.get("type"):
        if act["type"] not in HEAD_TYPES:
            raise ReleasedCheckpointError(f"act_head.type {act['type']!r}: not a FALCON head ({list(HEAD_TYPES)})")
        out["head"], out["use_esm"] = HEAD_TYPES[act["type"]]
        for key in ("hidden_size", "camera_gt_pt", "depth_gt_pt"):
            if key in act:
                out[key] = act[key]
        if "num_layers" in act:
            out["lstm_layers"] = act["num_layers"]
        if act.get("latent", 1) != 1 or act.get("action_dim", 7) != 7:
            raise ReleasedCheckpointError(f"act_head: latent {act.get('latent')} / action_dim "
                                          f"{act.get('action_dim')}: only latent 1, action_dim 7 are released")
    if hp.get("use_hand_rgb"):
        raise ReleasedCheckpointError("use_hand_rgb: true: the released FALCON checkpoints read the static camera")
    if "window_size" in hp:
        out["window"] = hp["window_size"]
    if hp.get("norm_action"):
        out["action_norm"] = "clip"
        out["norm_bounds"] = [hp.get("norm_min", -0.65), hp.get("norm_max", 0.65)]
    if "arm_gripper_loss_ratio" in hp:
        out["gripper_weight"] = hp["arm_gripper_loss_ratio"]
    for key in ("head", "use_esm", "window", "action_norm", "norm_bounds", "rotation", "camera_gt_pt",
                "depth_gt_pt"):
        if key in opts:
            out[key] = opts[key]
    return out


def _statistics(opts: dict) -> dict:
    """q01/q99/mask of the action from a dataset_statistics JSON (top-level `action` or `[unnorm_key].action`)."""
    p = Path(opts["statistics"])
    if not p.is_file():
        raise ReleasedCheckpointError(f"load_options.statistics: {p} is not a local file")
    data = json.loads(p.read_text())
    key = opts.get("unnorm_key")
    node = data[key] if key and key in data else data
    if "action" not in node:
        raise ReleasedCheckpointError(f"{p}: no `action` statistics (unnorm_key {key!r}; keys {list(data)[:8]})")
    a = node["action"]
    mask = a.get("mask", [True] * len(a["q01"]))
    return {"action_q01": [float(v) for v in a["q01"]], "action_q99": [float(v) for v in a["q99"]],
            "action_mask": [bool(v) for v in mask], "action_norm": "q01_q99"}


def _dtype(opts: dict, hp: dict) -> torch.dtype:
    name = opts.get("dtype") or {"bf16": "bfloat16", "fp16": "float16"}.get(
        str((hp.get("trainer") or {}).get("precision", "")), "float32")
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16}
    if name not in table:
        raise ConfigError(f"load_options.dtype: {name!r}; expected float32 or bfloat16")
    return table[name]


def _card(name_or_path: str):
    from vla_ros.policies.cards import CardError, load_card

    try:
        return load_card("falcon", str(name_or_path))
    except CardError as exc:
        raise ConfigError(f"load_options.card: {exc}") from None


def _options(opts: dict) -> dict:
    """The load options over the card's defaults (its name, action_reference, dt_s and `run`)."""
    unknown = sorted(set(opts) - KNOWN_OPTIONS)
    if unknown:
        raise ConfigError(f"load_options: unknown {unknown}; known: {sorted(KNOWN_OPTIONS)}")
    if "card" in opts:
        card = _card(opts["card"])
        bad = sorted(set(card.data["run"]) - KNOWN_OPTIONS)
        if bad:
            raise ConfigError(f"{card.path}: run: unknown load options {bad}; known: {sorted(KNOWN_OPTIONS)}")
        defaults = {"name": card.name, "action_reference": card.data["action_reference"],
                    "dt_s": card.data["dt_s"], **card.data["run"]}
        opts = {**defaults, **opts}
    return opts


def _count(state: dict, prefix: str) -> int:
    return len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})


def head_widths(model_state: dict) -> dict:
    """The head's widths as stored (the reference hard-codes 1024 / 512 / 256, injector 512 / 1024; tiny test
    checkpoints use smaller ones): hidden_size, mlp_widths, injector_widths, lstm_layers, chunk."""
    out: dict = {}
    w = [model_state[f"act_head.actions.mlp.{i}.weight"] for i in (0, 2, 4, 6)
         if f"act_head.actions.mlp.{i}.weight" in model_state]
    if len(w) == 4:
        out["hidden_size"] = int(w[0].shape[1])
        out["mlp_widths"] = [int(x.shape[0]) for x in w[:3]]
        out["chunk"] = int(w[3].shape[0]) // 6
    if "act_head.spatial_injector.proj0.0.weight" in model_state:
        out["injector_widths"] = [int(model_state["act_head.spatial_injector.proj0.0.weight"].shape[0]),
                                  int(model_state["act_head.spatial_injector.adapter.0.weight"].shape[0])]
    if "act_head.rnn.weight_ih_l0" in model_state:
        out["lstm_layers"] = sum(1 for k in model_state if k.startswith("act_head.rnn.weight_ih_l"))
    return out


def esm_config_from_state(esm: dict):
    """ESMConfig of an ESM state dict (VGGT-1B sizes for esm-1b): widths, depths and patch from the tensors."""
    from vla_ros.policies.spatial_model.esm import ESMConfig

    if not esm:
        return ESMConfig.vggt_1b(point_head=False)
    C = int(esm["aggregator.camera_token"].shape[-1])
    patch = int(esm["aggregator.patch_embed.patch_embed.proj.weight"].shape[-1])
    grid = int(round((esm["aggregator.patch_embed.pos_embed"].shape[1] - 1) ** 0.5))
    heads = C // int(esm["aggregator.frame_blocks.0.attn.q_norm.weight"].shape[0])
    depth = _count(esm, "aggregator.frame_blocks.")
    feats = int(esm["depth_head.scratch.layer1_rn.weight"].shape[0]) if "depth_head.scratch.layer1_rn.weight" in esm \
        else 256
    outs = [int(esm[f"depth_head.projects.{i}.weight"].shape[0]) for i in range(4)] \
        if "depth_head.projects.0.weight" in esm else [256, 512, 1024, 1024]
    return ESMConfig(embed_dim=C, heads=heads, depth=depth, patch_size=patch, img_size=grid * patch,
                     dino_depth=_count(esm, "aggregator.patch_embed.blocks."), init_values=1.0 if depth == 24 else 0.01,
                     camera_head=any(k.startswith("camera_head.") for k in esm),
                     depth_head=any(k.startswith("depth_head.") for k in esm), point_head=False,
                     head_trunk_depth=max(1, _count(esm, "camera_head.trunk.")), head_heads=heads,
                     dpt_features=feats, dpt_out_channels=outs, dpt_layers=[4, 11, 17, 23] if depth == 24 else [])


def build_config(hp: dict, opts: dict, widths: dict | None = None, esm_cfg=None):
    """The vla_ros PolicyConfig of the released checkpoint."""
    from vla_ros.policies.config import PolicyConfig
    from vla_ros.policies.spatial_model.esm import ESMConfig

    widths = dict(widths or {})
    chunk = widths.pop("chunk", None)
    ref = {**widths, **reference_settings(hp, opts)}
    if "statistics" in opts:
        ref.update(_statistics(opts))
    ref.setdefault("rotation", "euler_xyz")
    kosmos = opts.get("kosmos2") or (hp.get("vlm") or {}).get("pretrained_model_name_or_path", "")
    if not kosmos or not Path(kosmos).is_dir():
        raise ReleasedCheckpointError(f"load_options.kosmos2: a local Kosmos-2 folder (config.json + tokenizer) "
                                      f"is needed; the checkpoint names {kosmos!r}, not a folder here")
    esm = esm_cfg or ESMConfig.vggt_1b(point_head=False)
    data = {"method": "falcon", "name": opts.get("name", "falcon_released"),
            "camera_names": [opts.get("camera", "front")], "image_size": int(opts.get("image_size",
                                                                                     hp.get("image_size", 224))),
            "proprio_dim": 0, "horizon": int(opts.get("chunk", hp.get("fwd_pred_next_n", chunk or 1))),
            "dt_s": float(opts.get("dt_s", 0.2)), "action_reference": opts.get("action_reference", "delta_target"),
            "modalities": "rgbd_pose", "vlm": {"kind": "hf", "path": str(kosmos), "patch_size": 14},
            "method_args": {"architecture": "reference", "esm": esm.__dict__.copy(), "reference": ref}}
    return from_dict(PolicyConfig, data)


def split_state(state: dict) -> tuple[dict, dict, list[str]]:
    """Lightning state_dict -> (model keys without `model.`, the ESM's own keys if the .ckpt holds them, keys
    outside `model.`)."""
    model, esm, other = {}, {}, []
    for k, v in state.items():
        k2 = k
        for pre in ("_forward_module.", "module."):  # DeepSpeed / DDP wrappers
            k2 = k2[len(pre):] if k2.startswith(pre) else k2
        if not k2.startswith("model."):
            other.append(k)
            continue
        k2 = k2[len("model."):]
        if k2.startswith("act_head.vggt_net."):
            esm[k2[len("act_head.vggt_net."):]] = v
        else:
            model[k2] = v
    return model, esm, other


@contextlib.contextmanager
def parameters_on_meta():
    """Modules built inside get their parameters on the meta device (shapes only: nothing allocated, no
    initialisation computed); buffers stay real (they are small, and the non-persistent ones are in no
    checkpoint). The released weights are then assigned, each converted to the target dtype on its own."""
    register = torch.nn.Module.register_parameter

    def on_meta(module, name, param):
        register(module, name, param)
        if param is not None and not param.is_meta:
            module._parameters[name] = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    torch.nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register


def assign_state(module: torch.nn.Module, state: dict, dtype: torch.dtype) -> None:
    """`state`'s tensors become the module's (load_state_dict assign), floating-point ones converted to `dtype`
    one at a time (a tensor stored once for tied keys is converted once); parameters that were one tensor before
    (tied, e.g. Kosmos-2's lm_head and embed_tokens) are one again after."""
    ties: dict[int, list[str]] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        ties.setdefault(id(p), []).append(name)
    done: dict[tuple, torch.Tensor] = {}
    out = {}
    for k, v in state.items():
        if not v.is_floating_point() or v.dtype == dtype:
            out[k] = v
            continue
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape), tuple(v.stride()))
        out[k] = done[key] if key in done else done.setdefault(key, v.to(dtype))
    module.load_state_dict(out, strict=False, assign=True)
    for names in ties.values():
        first = module.get_parameter(names[0])
        for name in names[1:]:
            owner, _, leaf = name.rpartition(".")
            setattr(module.get_submodule(owner), leaf, first)


def load_state_strict(module: torch.nn.Module, state: dict, what: str, dtype: torch.dtype | None = None) -> None:
    """Load with zero missing and zero unexpected keys and equal shapes, or raise naming them. With `dtype`, the
    tensors are assigned at that dtype (a module built by `parameters_on_meta`), else copied in."""
    check_state(module, state, what)
    if dtype is None:
        module.load_state_dict(state, strict=True)
    else:
        assign_state(module, state, dtype)


def check_state(module: torch.nn.Module, state: dict, what: str) -> None:
    """Zero missing and zero unexpected keys and equal shapes, or a ReleasedCheckpointError naming them."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise ReleasedCheckpointError(f"{what}: {len(missing)} missing {missing[:10]}, {len(unexpected)} unexpected "
                                      f"{unexpected[:10]}, {len(shapes)} shape mismatches {shapes[:5]}")


ESM_FOLDER_FIELDS = ("embed_dim", "heads", "depth", "patch_size", "dino_depth", "num_register_tokens",
                     "input_convention")


def check_esm_folder(path: str | Path, esm_cfg) -> None:
    """A vla_ros ESM folder (config.yaml beside the weights, written by `vla-ros pretrain-esm`) must have been
    trained with this model's sizes and input convention; under another convention its tokens mean something
    else (e.g. the bundled sim_esm, "legacy", fed FALCON's reference inputs). Other folders are not checked."""
    p = Path(path)
    if not (p.is_dir() and (p / "config.yaml").is_file()):
        return
    from vla_ros.policies.spatial_model.esm import read_esm_config

    saved = read_esm_config(p)
    for f in ESM_FOLDER_FIELDS:
        if getattr(saved, f) != getattr(esm_cfg, f):
            raise ConfigError(f"method_args.esm_checkpoint {p}: esm.{f} is {getattr(saved, f)!r} there, "
                              f"{getattr(esm_cfg, f)!r} in this config"
                              + ("; pretrain an ESM in this convention (vla-ros pretrain-esm)"
                                 if f == "input_convention" else ""))


def read_esm_state(path: str | Path, dtype: torch.dtype | None = None) -> dict:
    """The ESM's safetensors: a file, or a folder with model.safetensors or shards (*.safetensors); with `dtype`,
    each floating-point tensor converted as it is read (never the whole ESM at full precision)."""
    from safetensors import safe_open

    p = Path(path)
    if p.is_file() and p.suffix != ".safetensors":
        from vla_ros.policies.spatial_model.esm import read_weights_file

        state = read_weights_file(str(p), "load_options.esm")  # a weights-only .pt
        return {k: v.to(dtype) if dtype is not None and v.is_floating_point() else v for k, v in state.items()}
    files = [p] if p.is_file() else sorted(p.glob("*.safetensors")) if p.is_dir() else []
    if not files:
        raise ReleasedCheckpointError(f"load_options.esm: {p}: no .safetensors file (the esm-1b folder)")
    state: dict = {}
    for f in files:
        with safe_open(str(f), framework="pt", device="cpu") as fh:
            for k in fh.keys():
                v = fh.get_tensor(k)
                state[k] = v.to(dtype) if dtype is not None and v.is_floating_point() else v
    return state


def load_released(path: Path, device: str, options: dict):
    """-> a FalconReferencePolicy with every weight from the .ckpt and the ESM folder."""
    from vla_ros.policies.factory import make_policy

    opts = _options(dict(options))
    ckpt_path = _ckpt_file(Path(path))
    ckpt = read_ckpt(ckpt_path, bool(opts.get("trust_pickle", False)))
    state = ckpt.get("state_dict", ckpt.get("model_state_dict"))
    hp = _hparams(ckpt)
    model_state, esm_state, other = split_state(state)
    if other or not any(k.startswith("backbone.") for k in model_state) or "action_token" not in model_state:
        raise ReleasedCheckpointError(f"{ckpt_path}: not a FALCON checkpoint: expected model.backbone.*, "
                                      f"model.action_token, model.act_head.*; found {sorted(state)[:8]}")
    has_injector = any(k.startswith("act_head.spatial_injector.") for k in model_state)
    if has_injector and "esm" not in opts and not esm_state:
        raise ReleasedCheckpointError(f"{ckpt_path}: holds no ESM (model.act_head.vggt_net.*); pass "
                                      "load_options.esm (run: --esm) = the esm-1b folder")
    dtype = _dtype(opts, hp)
    esm_file_state = read_esm_state(opts["esm"], dtype) if "esm" in opts else {}
    cfg = build_config(hp, opts, head_widths(model_state), esm_config_from_state(esm_state or esm_file_state))
    with parameters_on_meta():  # built empty; every weight is assigned below at `dtype`
        policy = make_policy(cfg, None, external_weights=False)
    model = policy.model
    load_state_strict(torch.nn.ModuleDict({"backbone": model.backbone}),
                      {k: v for k, v in model_state.items() if k.startswith("backbone.")}, f"{ckpt_path} backbone",
                      dtype)
    rest = {k: v for k, v in model_state.items() if not k.startswith("backbone.")}
    head_own = {k: v for k, v in model.state_dict().items()
                if not k.startswith("backbone.") and not k.startswith("act_head.vggt_net.")}
    missing = sorted(set(head_own) - set(rest))
    unexpected = sorted(set(rest) - set(head_own))
    shapes = [k for k in head_own if k in rest and tuple(rest[k].shape) != tuple(head_own[k].shape)]
    if missing or unexpected or shapes:
        raise ReleasedCheckpointError(f"{ckpt_path}: action token / head: {len(missing)} missing {missing[:10]}, "
                                      f"{len(unexpected)} unexpected {unexpected[:10]}, shape mismatches {shapes[:5]}")
    assign_state(model, rest, dtype)  # action_token and act_head.* (but the ESM), all checked above
    head = model.act_head
    if head.uses_esm:
        if "esm" in opts:
            check_state(head.vggt_net, esm_file_state, f"ESM {opts['esm']}")
        if esm_state:  # the .ckpt's ESM wins over the folder's, as the reference loads the .ckpt last
            load_state_strict(head.vggt_net, esm_state, f"{ckpt_path} model.act_head.vggt_net", dtype)
        elif "esm" in opts:
            load_state_strict(head.vggt_net, esm_file_state, f"ESM {opts['esm']}", dtype)
        else:
            raise ReleasedCheckpointError(f"{ckpt_path}: holds no ESM (model.act_head.vggt_net.*); pass "
                                          "load_options.esm (run: --esm) = the esm-1b folder")
    elif "esm" in opts:
        raise ReleasedCheckpointError(f"load_options.esm: {ckpt_path} has a plain head (stage 1), no ESM to load")
    if cfg.horizon * 6 != model.act_head.actions.mlp[-2].out_features:
        raise ReleasedCheckpointError(f"chunk {cfg.horizon}: the checkpoint's head predicts "
                                      f"{model.act_head.actions.mlp[-2].out_features // 6} steps")
    empty = [n for n, p in model.named_parameters() if p.is_meta]
    if empty:
        raise ReleasedCheckpointError(f"{ckpt_path}: no weights for {empty[:10]}")
    policy.to(device=device, dtype=dtype)  # the buffers; the weights are at `dtype` already
    policy.eval()
    return policy


def inspect_released(path: Path, card: str = "", options: dict | None = None):
    """Key coverage of a released .ckpt (and the ESM folder of `options["esm"]`) against the reference
    architecture built on the meta device with the widths the tensors show (`vla-ros checkpoint inspect`)."""
    from vla_ros.policies.factory import make_policy
    from vla_ros.policies.inspect_checkpoint import CheckpointReport, compare

    opts = _options({**dict(options or {}), **({"card": card} if card else {})})
    ckpt_path = _ckpt_file(Path(path))
    ckpt = read_ckpt(ckpt_path, bool(opts.get("trust_pickle", False)))
    hp = _hparams(ckpt)
    model_state, esm_state, _ = split_state(ckpt.get("state_dict", ckpt.get("model_state_dict")))
    esm_file = read_esm_state(opts["esm"]) if "esm" in opts else {}
    found = {f"model.{k}": tuple(v.shape) for k, v in model_state.items()}
    found.update({f"model.act_head.vggt_net.{k}": tuple(v.shape) for k, v in esm_state.items()})
    found.update({f"esm/{k}": tuple(v.shape) for k, v in esm_file.items()})
    cfg = build_config(hp, opts, head_widths(model_state), esm_config_from_state(esm_state or esm_file))
    with torch.device("meta"):
        model = make_policy(cfg, None, external_weights=False).model
    expected = {}
    for k, v in model.state_dict().items():
        if not k.startswith("act_head.vggt_net."):
            expected[f"model.{k}"] = tuple(v.shape)
        elif esm_state:
            expected[f"model.{k}"] = tuple(v.shape)
        elif "esm" in opts:
            expected[f"esm/{k[len('act_head.vggt_net.'):]}"] = tuple(v.shape)
    missing, unexpected, shapes = compare(found, expected)
    n = sum(int(torch.Size(s).numel()) for s in found.values())
    shown = _card(opts["card"]) if "card" in opts else None
    return CheckpointReport(str(ckpt_path), "falcon", "released", n, len(found), len(expected), missing, unexpected,
                            shapes, sorted(_statistics(opts)) if "statistics" in opts else [], shown)
