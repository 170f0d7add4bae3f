"""Released SpatialVLA folders (IPEC-COMMUNITY/spatialvla-4b-224-pt and its fine-tunes), key for key.

Layout: config.json (model_type "spatialvla"), model-00001-of-00002.safetensors ... + model.safetensors.index.json
(or one model.safetensors), preprocessor_config.json (image size) and processor_config.json (statistics,
bin_policy, intrinsic_config, action_config, action_chunk_size), tokenizer.json. Local files only. Every
released key must map to a module key and back: missing, unexpected and shape mismatches raise, named.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vla_ros.core.config import to_dict
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.spatialvla.configuration_spatialvla import SpatialVLAConfig

CONFIG, INDEX, SINGLE = "config.json", "model.safetensors.index.json", "model.safetensors"
PROCESSOR, PREPROCESSOR, TOKENIZER = "processor_config.json", "preprocessor_config.json", "tokenizer.json"
OPTIONS = ("unnorm_key", "dtype", "depth_source", "intrinsics_source", "constrain_action_tokens", "ensemble",
           "ensemble_horizon", "ensemble_temp", "execute_steps", "action_reference", "dt_s", "camera_names", "card")
RUN_OPTIONS = ("dtype", "depth_source", "intrinsics_source", "constrain_action_tokens", "ensemble",
               "ensemble_horizon", "ensemble_temp", "execute_steps")


class ReleasedCheckpointError(ValueError):
    """A released folder is incomplete or does not match the architecture; the message names what."""


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ReleasedCheckpointError(f"{path}: missing") from None
    except json.JSONDecodeError as exc:
        raise ReleasedCheckpointError(f"{path}: not valid JSON ({exc})") from None


def is_released(path: Path) -> bool:
    """A folder whose config.json says model_type "spatialvla"."""
    try:
        return Path(path).is_dir() and json.loads((Path(path) / CONFIG).read_text()).get("model_type") == "spatialvla"
    except (OSError, ValueError):
        return False


def read_processor(folder: Path) -> dict:
    """preprocessor_config.json, then processor_config.json on top (both optional, one must carry statistics)."""
    out: dict = {}
    for name in (PREPROCESSOR, PROCESSOR):
        if (folder / name).is_file():
            out.update(_json(folder / name))
    for key in ("statistics", "intrinsic_config", "action_config"):
        if not out.get(key):
            raise ReleasedCheckpointError(f"{folder}: {PROCESSOR} (or {PREPROCESSOR}) has no {key!r}")
    return out


def bin_edges(proc: dict) -> dict:
    """The processor's explicit bin_policy edges; else edges from Gaussians `gs_params` ({theta: {mu, sigma}, ...},
    sigma raised to `min_sigma`, 0 by default as the reference); else uniform bins, as the reference processor."""
    from vla_ros.policies.spatialvla.configuration_spatialvla import uniform_bin_policy
    from vla_ros.policies.spatialvla.processing_spatialvla import gaussian_bin_policy

    num_bins = proc["action_config"]["num_bins"]
    if proc.get("bin_policy"):
        return proc["bin_policy"]
    if proc.get("gs_params"):
        return gaussian_bin_policy(proc["gs_params"], num_bins, float(proc.get("min_sigma") or 0.0))
    return uniform_bin_policy(num_bins)


def shard_files(folder: Path) -> dict[str, Path]:
    """{released key: shard file} from the index (or the single model.safetensors)."""
    if (folder / INDEX).is_file():
        weight_map = _json(folder / INDEX).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ReleasedCheckpointError(f"{folder / INDEX}: no 'weight_map'")
        missing = sorted({f for f in weight_map.values() if not (folder / f).is_file()})
        if missing:
            raise ReleasedCheckpointError(f"{folder / INDEX}: shard files missing: {missing}")
        return {k: folder / f for k, f in weight_map.items()}
    if (folder / SINGLE).is_file():
        return {k: folder / SINGLE for k in _keys_of(folder / SINGLE)}
    raise ReleasedCheckpointError(f"{folder}: neither {INDEX} nor {SINGLE}")


def _keys_of(shard: Path) -> list[str]:
    try:
        with safe_open(str(shard), framework="pt") as f:
            return list(f.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        raise ReleasedCheckpointError(f"{shard}: truncated or not a safetensors file ({exc})") from None


def resolve_unnorm_key(statistics: dict, wanted: str, where: Path) -> str:
    if wanted:
        if wanted not in statistics:
            raise ReleasedCheckpointError(f"{where}: unnorm_key {wanted!r} is not in the statistics; available: "
                                          f"{sorted(statistics)}")
        return wanted
    if len(statistics) == 1:
        return next(iter(statistics))
    raise ReleasedCheckpointError(f"{where}: set policy.load_options.unnorm_key; available: {sorted(statistics)}")


def folder_card(folder: Path, name: str = ""):
    """The card named in the options, else the folder's card.yaml, else the shipped card of the folder's name."""
    from vla_ros.policies.cards import load_card, match_card

    if name:
        return load_card("spatialvla", name)
    if (folder / "card.yaml").is_file():
        return load_card("spatialvla", str(folder / "card.yaml"))
    return match_card("spatialvla", folder)


def released_policy_config(folder: Path, options: dict) -> PolicyConfig:
    """The PolicyConfig that rebuilds a released folder (config.json + processor + options)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ReleasedCheckpointError(f"policy.load_options: unknown {unknown}; known: {list(OPTIONS)}")
    model = _json(folder / CONFIG)
    if model.get("model_type") != "spatialvla":
        raise ReleasedCheckpointError(f"{folder / CONFIG}: model_type {model.get('model_type')!r}, expected "
                                      "'spatialvla'")
    proc = read_processor(folder)
    if not (folder / TOKENIZER).is_file():
        raise ReleasedCheckpointError(f"{folder / TOKENIZER}: missing (the checkpoint's Gemma tokenizer)")
    card = folder_card(folder, options.get("card", ""))
    card = card.data if card else {}
    key = resolve_unnorm_key(proc["statistics"], options.get("unnorm_key") or card.get("dataset_key", ""), folder)
    args = {"model": model, "tokenizer_file": str((folder / TOKENIZER).resolve()), "statistics": proc["statistics"],
            "unnorm_key": key, "bin_policy": bin_edges(proc), "num_bins": proc["action_config"]["num_bins"],
            "use_spherical": proc["action_config"].get("use_spherical", True),
            "intrinsic_config": proc["intrinsic_config"], "action_chunk_size": int(proc.get("action_chunk_size", 4)),
            "min_sigma": float(proc.get("min_sigma", 0.0))}
    run = {**card.get("run", {}), **{k: v for k, v in options.items() if k in RUN_OPTIONS}}
    args.update(run)
    method_args = to_dict(SpatialVLAConfig(**args))
    sensor = method_args["depth_source"] == "sensor"
    return PolicyConfig(method="spatialvla", name=folder.name,
                        camera_names=list(options.get("camera_names", ["front"])),
                        image_size=int(model["vision_config"].get("image_size", 224)), proprio_dim=0,
                        horizon=method_args["action_chunk_size"],
                        dt_s=float(options.get("dt_s", card.get("dt_s", 0.2))),
                        action_reference=options.get("action_reference", card.get("action_reference", "delta_target")),
                        modalities="rgbd" if sensor else "rgb", method_args=method_args)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def build_empty(config: PolicyConfig, device: str | torch.device = "cpu"):
    """The policy on `device` in its dtype, weights uninitialised (they are loaded next); on "meta", shapes only."""
    from transformers.initialization import no_init_weights

    from vla_ros.policies.spatialvla.modeling_spatialvla import DTYPES, SpatialVLAPolicy

    dtype = DTYPES[config.method_args.get("dtype", "float32")]
    with torch.device(device), _default_dtype(dtype), no_init_weights():
        return SpatialVLAPolicy(config, None, external_weights=False)


def load_released(path: Path, device: str = "cpu", options: dict | None = None):
    """Build and fill a SpatialVLA policy from a released folder (see the module docstring)."""
    from vla_ros.policies.spatialvla.layout_spatialvla import released_names

    folder = Path(path)
    cfg = released_policy_config(folder, dict(options or {}))
    policy = build_empty(cfg, device)
    to_module = {v: k for k, v in released_names(policy).items()}
    files = shard_files(folder)
    own = policy.state_dict()
    missing = sorted(set(to_module) - set(files))
    unexpected = sorted(set(files) - set(to_module))
    if missing or unexpected:
        raise ReleasedCheckpointError(
            f"{folder}: weights do not match the SpatialVLA architecture of {CONFIG}: {len(missing)} missing "
            f"{missing[:8]}{'...' if len(missing) > 8 else ''}, {len(unexpected)} unexpected "
            f"{unexpected[:8]}{'...' if len(unexpected) > 8 else ''}")
    shapes = []
    with torch.no_grad():
        for shard in sorted(set(files.values())):
            _keys_of(shard)
            with safe_open(str(shard), framework="pt", device="cpu") as f:
                for key in f.keys():
                    if key not in to_module:
                        continue
                    try:
                        t = f.get_tensor(key)
                    except (SafetensorError, OSError, ValueError) as exc:
                        raise ReleasedCheckpointError(f"{shard}: {key} unreadable, truncated shard ({exc})") from None
                    dst = own[to_module[key]]
                    if tuple(t.shape) != tuple(dst.shape):
                        shapes.append(f"{key}: file {tuple(t.shape)} vs model {tuple(dst.shape)}")
                        continue
                    dst.copy_(t)
        if shapes:
            raise ReleasedCheckpointError(f"{folder}: shape mismatches {shapes[:8]}")
        if policy.use_spatial_token:  # as the reference's from_pretrained: LM rows of the action ids = spatial
            n = policy.spatial_embed_tokens.num_embeddings
            policy.language_model.model.embed_tokens.weight[-n:] = policy.spatial_embed_tokens.weight
    return policy.eval()


def save_released(policy, folder: str | Path, n_shards: int = 2, processor_extra: dict | None = None) -> Path:
    """Write `policy` in the released folder layout (the tests' tiny folders, or an export)."""
    from vla_ros.policies.spatialvla.layout_spatialvla import released_state_dict

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    a = policy.args
    state = {k: v.detach().contiguous().cpu() for k, v in released_state_dict(policy).items()}
    keys = sorted(state)
    n_shards = max(1, min(n_shards, len(keys)))
    weight_map, total = {}, 0
    for i in range(n_shards):
        name = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        part = {k: state[k] for k in keys[i::n_shards]}
        save_file(part, str(out / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
        total += sum(v.numel() * v.element_size() for v in part.values())
    (out / INDEX).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    n_img = policy.n_image_tokens  # the fields the reference's SpatialVLAConfig (transformers 4.47) also writes
    model = {**a.model, "architectures": ["SpatialVLAForConditionalGeneration"],
             "auto_map": {"AutoConfig": "configuration_spatialvla.SpatialVLAConfig",
                          "AutoModel": "modeling_spatialvla.SpatialVLAForConditionalGeneration"},
             "torch_dtype": "bfloat16", "transformers_version": "4.47.0",
             "_vocab_size": a.model["text_config"]["vocab_size"],
             "text_config": {**a.model["text_config"], "num_image_tokens": n_img, "cache_implementation": "hybrid",
                             "torch_dtype": "bfloat16"},
             "vision_config": {**a.model["vision_config"], "num_image_tokens": n_img,
                               "projection_dim": a.model.get("projection_dim"), "torch_dtype": "bfloat16"}}
    (out / CONFIG).write_text(json.dumps(model, indent=2))
    size = policy.image_size
    (out / PREPROCESSOR).write_text(json.dumps({
        "image_processor_type": "SiglipImageProcessor", "processor_class": "SpatialVLAProcessor",
        "size": {"height": size, "width": size}, "image_seq_length": policy.n_image_tokens, "do_resize": True,
        "resample": 3, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": False,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}, indent=2))
    proc = {"processor_class": "SpatialVLAProcessor", "statistics": a.statistics, "bin_policy": a.bin_policy,
            "intrinsic_config": a.intrinsic_config,
            "action_config": {"num_bins": a.num_bins, "use_spherical": a.use_spherical},
            "num_obs_steps": 1, "obs_delta": 1, "action_chunk_size": a.action_chunk_size, "min_sigma": a.min_sigma,
            **(processor_extra or {})}
    (out / PROCESSOR).write_text(json.dumps(proc, indent=2))
    policy.tokenizer.save(str(out / TOKENIZER))
    (out / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GemmaTokenizer",
                                                           "add_bos_token": False, "add_eos_token": False}))
    (out / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<bos>", "eos_token": "<eos>",
                                                             "pad_token": "<pad>", "unk_token": "<unk>",
                                                             "additional_special_tokens": ["<image>"]}))
    return out


def inspect_released(path: Path, card: str = "", options: dict | None = None):
    """Key coverage of a released folder against the architecture its config.json describes (built on meta)."""
    from vla_ros.policies.inspect_checkpoint import CheckpointReport, compare
    from vla_ros.policies.spatialvla.layout_spatialvla import released_names

    folder = Path(path)
    stats = read_processor(folder)["statistics"]
    found_card = folder_card(folder, card)
    key = next(iter(stats))
    if found_card and found_card.data["dataset_key"] in stats:
        key = found_card.data["dataset_key"]
    cfg = released_policy_config(folder, {"unnorm_key": key, **({"card": card} if card else {})})
    model = build_empty(cfg, "meta")
    names = released_names(model)
    expected = {names[k]: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {}
    for shard in sorted(set(shard_files(folder).values())):
        _keys_of(shard)
        with safe_open(str(shard), framework="pt") as f:
            found.update({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
    missing, unexpected, shapes = compare(found, expected)
    n = sum(int(torch.Size(s).numel()) for s in found.values())
    return CheckpointReport(str(folder), "spatialvla", "released", n, len(found), len(expected), missing, unexpected,
                            shapes, sorted(stats), found_card)
