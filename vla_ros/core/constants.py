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
# The methods the benchmarks compare as tiny models (SpatialVLA by its look-alike, which trains on a CPU), and the
# methods `vla-ros train --method` accepts.
METHOD_SPATIALVLA_LEGACY = "spatialvla_legacy"
METHOD_PI0 = "pi0"
TINY_METHODS = (METHOD_BASELINE, METHOD_FALCON, METHOD_SPATIAL_FORCING, METHOD_SPATIALVLA_LEGACY)
TRAINABLE_METHODS = (*TINY_METHODS, METHOD_SPATIALVLA, METHOD_PI0)

# Orientations (quaternions x, y, z, w).
TOOL_DOWN_QUAT_XYZW = (1.0, 0.0, 0.0, 0.0)  # tool pointing down: the x axis rotated by 180 degrees
UNIT_QUAT_TOL = 1e-2  # |norm - 1| allowed for an orientation read from a message or a bag
UNIT_QUAT_TOL_STRICT = 1e-3  # |norm - 1| allowed for one vla_ros computes (a policy's chunk, a simulator target)

# Checkpoint folder layout.
CKPT_WEIGHTS = "model.safetensors"
CKPT_CONFIG = "config.yaml"
CKPT_NORM_STATS = "norm_stats.json"
CKPT_TOKENIZER = "tokenizer.json"
