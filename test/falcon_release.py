"""Test helpers: tiny folders in the released FALCON layout (a Kosmos-2 folder, the Lightning .ckpt, the esm-1b
folder), written from transformers' Kosmos2 classes and the reference's module/attribute names
(RoboVLMs base_policy.py: FCDecoder_ESM / LSTMDecoder_ESM, MLPTanhHead, MLPSigmoidHead, PCDInjector_V1) --
not from vla_ros's own FALCON model."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

TINY_TEXT = {"vocab_size": 32, "embed_dim": 32, "layers": 2, "ffn_dim": 64, "attention_heads": 4,
             "max_position_embeddings": 128, "dropout": 0.0, "attention_dropout": 0.0}
TINY_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
               "image_size": 28, "patch_size": 14}
TINY_ESM = {"embed_dim": 32, "heads": 2, "depth": 2, "patch_size": 14, "img_size": 56, "dino_depth": 1,
            "camera_head": True, "depth_head": True, "point_head": False, "head_trunk_depth": 1, "head_heads": 2,
            "dpt_features": 8, "dpt_out_channels": [8, 8, 16, 16]}
# the tiny counterparts of the reference's hard-coded widths (mlp 1024/512/256, injector 512/1024, hidden 1024)
TINY_HEAD = {"hidden_size": 16, "mlp_widths": [16, 8, 8], "injector_widths": [8, 16], "lstm_layers": 2}
WORDS = ["an", "image", "of", "a", "robot", "put", "the", "carrot", "on", "plate", "pick", "up", "can", "open",
         "drawer", "spoon", "towel", "eggplant", "basket", "block", "stack", "green", "yellow", "coke"]


def reference_head_state(kind: str, D: int, hidden: int, chunk: int, mlp: list[int], inj: list[int],
                         esm_dim: int | None, lstm_layers: int = 4) -> dict[str, torch.Tensor]:
    """act_head.* tensors (without the ESM) named as the reference builds them; random values."""
    m = nn.Module()
    if kind == "fc":  # FCDecoder(_ESM).mlp: Linear(D, D // 2), ReLU, Linear(D // 2, hidden)
        m.mlp = nn.Sequential(nn.Linear(D, D // 2), nn.ReLU(), nn.Linear(D // 2, hidden))
    else:  # LSTMDecoder(_ESM).rnn
        m.rnn = nn.LSTM(D, hidden, lstm_layers, batch_first=True)
    for name, out, tanh in (("actions", chunk * 6, True), ("gripper", chunk, False)):
        head = nn.Module()  # MLPTanhHead / MLPSigmoidHead: .mlp = Linear/ReLU x3, Linear (+ Tanh)
        w = [hidden, *mlp, out]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Linear(w[i], w[i + 1]), nn.ReLU()]
        layers[-1] = nn.Tanh() if tanh else layers[-1]
        head.mlp = nn.Sequential(*(layers if tanh else layers[:-1]))
        setattr(m, name, head)
    if esm_dim is not None:  # PCDInjector_V1(esm_dim, D)
        inj_m = nn.Module()
        inj_m.proj0 = nn.Sequential(nn.Linear(esm_dim, inj[0]), nn.LayerNorm(inj[0]))
        inj_m.adapter = nn.Sequential(nn.Linear(inj[0], inj[1]), nn.GELU(), nn.LayerNorm(inj[1]),
                                      nn.Linear(inj[1], inj[1]), nn.GELU())
        inj_m.proj1 = nn.Sequential(nn.Linear(inj[1], D))
        m.spatial_injector = inj_m
    for p in m.parameters():
        nn.init.normal_(p, 0, 0.1)
    return m.state_dict()


def write_kosmos2_folder(folder: Path, weights: bool = False, seed: int = 0) -> Path:
    """config.json (model_type kosmos-2) + a word-level fast tokenizer with <s> <pad> </s> <unk> <grounding>
    (+ model.safetensors when `weights`)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import Kosmos2Config, Kosmos2ForConditionalGeneration, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    cfg = Kosmos2Config(text_config=TINY_TEXT, vision_config=TINY_VISION, latent_query_num=4)
    cfg.save_pretrained(folder)
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<grounding>", *WORDS])}
    assert len(vocab) <= TINY_TEXT["vocab_size"]
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", additional_special_tokens=["<grounding>"])
    fast.save_pretrained(folder)
    if weights:
        torch.manual_seed(seed)
        Kosmos2ForConditionalGeneration(cfg).save_pretrained(folder)
    return folder


def write_esm_folder(folder: Path, seed: int = 0) -> tuple[Path, dict]:
    """esm/model.safetensors at tiny width (aggregator.*, camera_head.*, depth_head.*)."""
    from safetensors.torch import save_file

    from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, ESMConfig

    torch.manual_seed(seed)
    state = {k: v.contiguous() for k, v in EmbodiedSpatialModel(ESMConfig(**TINY_ESM)).state_dict().items()}
    for v in state.values():  # non-trivial values everywhere (zeros would hide a mix-up)
        v.normal_(0, 0.05) if v.is_floating_point() else None
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"))
    return folder, state


def write_released_ckpt(path: Path, kind: str = "fc", chunk: int = 5, window: int = 1, esm: bool = True,
                        seed: int = 1, extra_hp: dict | None = None, include_esm: dict | None = None) -> dict:
    """A Lightning .ckpt: state_dict (model.backbone.* from transformers' Kosmos2, model.action_token,
    model.act_head.* in the reference names) + hyper_parameters.configs (the RoboVLMs config keys read)."""
    from transformers import Kosmos2Config, Kosmos2ForConditionalGeneration

    torch.manual_seed(seed)
    cfg = Kosmos2Config(text_config=TINY_TEXT, vision_config=TINY_VISION, latent_query_num=4)
    backbone = Kosmos2ForConditionalGeneration(cfg).state_dict()
    D = TINY_TEXT["embed_dim"]
    head = reference_head_state(kind, D, TINY_HEAD["hidden_size"], chunk, TINY_HEAD["mlp_widths"],
                                TINY_HEAD["injector_widths"], 2 * TINY_ESM["embed_dim"] if esm else None,
                                TINY_HEAD["lstm_layers"])
    state = {f"model.backbone.{k}": v for k, v in backbone.items()}
    state["model.action_token"] = torch.randn(D)
    state.update({f"model.act_head.{k}": v for k, v in head.items()})
    state.update({f"model.act_head.vggt_net.{k}": v for k, v in (include_esm or {}).items()})
    types = {("fc", True): "FCDecoder_ESM", ("fc", False): "FCDecoder", ("lstm", True): "LSTMDecoder_ESM",
             ("lstm", False): "LSTMDecoder"}
    hp = {"fwd_pred_next_n": chunk, "window_size": window, "image_size": 28, "use_hand_rgb": False,
          "norm_action": False, "arm_gripper_loss_ratio": 0.01, "trainer": {"precision": "32"},
          "vlm": {"pretrained_model_name_or_path": ".vlms/kosmos-2-patch14-224"},
          "act_head": {"type": types[(kind, esm)], "hidden_size": TINY_HEAD["hidden_size"], "action_dim": 7,
                       "latent": 1, "down_sample": "none", "camera_gt_pt": 0.0, "depth_gt_pt": 0.0,
                       "num_layers": TINY_HEAD["lstm_layers"]}, **(extra_hp or {})}
    torch.save({"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "2.4.0", "state_dict": state,
                "hyper_parameters": {"configs": hp}}, str(path))
    (path.parent / "config.json").write_text(json.dumps(hp))
    return state


def tiny_load_options(kosmos: Path, esm: Path | None) -> dict:
    return {"kosmos2": str(kosmos), **({"esm": str(esm)} if esm else {})}
