"""Key names shared by the core, policies, datasets and nodes (one place, so they never drift)."""

# Modalities a policy may use; an ActionChunk lists the ones it actually used.
MOD_RGB = "rgb"
MOD_DEPTH = "depth"
MOD_POSE = "pose"
MODALITY_SETS = {
    "rgb": (MOD_RGB,),
    "rgbd": (MOD_RGB, MOD_DEPTH),
    "rgbd_pose": (MOD_RGB, MOD_DEPTH, MOD_POSE),
    "rgb_pose": (MOD_RGB, MOD_POSE),
}

# Reference semantics of a chunk's poses (values match vla_ros/msg/ActionChunk).
REF_ABSOLUTE = "absolute"
REF_DELTA_TARGET = "delta_target"
REF_DELTA_MEASURED = "delta_measured"
REFERENCES = (REF_ABSOLUTE, REF_DELTA_TARGET, REF_DELTA_MEASURED)
REFERENCE_TO_MSG = {REF_ABSOLUTE: 0, REF_DELTA_TARGET: 1, REF_DELTA_MEASURED: 2}
MSG_TO_REFERENCE = {v: k for k, v in REFERENCE_TO_MSG.items()}

# Methods served by the one policy runtime.
METHOD_BASELINE = "baseline"
METHOD_FALCON = "falcon"
METHOD_SPATIAL_FORCING = "spatial_forcing"
METHOD_SPATIALVLA = "spatialvla"
METHODS = (METHOD_BASELINE, METHOD_FALCON, METHOD_SPATIAL_FORCING, METHOD_SPATIALVLA)

# Checkpoint folder layout.
CKPT_WEIGHTS = "model.safetensors"
CKPT_CONFIG = "config.yaml"
CKPT_NORM_STATS = "norm_stats.json"
CKPT_TOKENIZER = "tokenizer.json"
