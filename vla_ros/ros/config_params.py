"""A loaded config section mirrored as read-only ROS parameters (`ros2 param get /vla_executor
executor.safety.max_speed_m_s`), each with a descriptor whose description gives its unit, range or choices. The
YAML stays the one place the values are set: overrides are ignored and set requests refused."""
from __future__ import annotations

import typing

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.parameter import Parameter

from vla_ros.core.config import FieldInfo, field_infos

_ARRAYS = {str: Parameter.Type.STRING_ARRAY, float: Parameter.Type.DOUBLE_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
           bool: Parameter.Type.BOOL_ARRAY}


def _parameter(info: FieldInfo) -> Parameter:
    """The value as a typed parameter (an empty list keeps its element type; anything else becomes a string)."""
    v = info.value
    if isinstance(v, (list, tuple)):
        args = typing.get_args(info.type)
        kind = _ARRAYS.get(args[0] if args else type(v[0]) if v else str)
        if kind == Parameter.Type.DOUBLE_ARRAY:
            return Parameter(info.name, kind, [float(x) for x in v])
        if kind is not None:
            return Parameter(info.name, kind, list(v))
    elif isinstance(v, (bool, int, float, str)):
        return Parameter(info.name, value=v)
    return Parameter(info.name, Parameter.Type.STRING, str(v))


def _descriptor(info: FieldInfo, p: Parameter, source: str) -> ParameterDescriptor:
    d = ParameterDescriptor(name=info.name, type=p.type_.value, read_only=True,
                            description=f"{info.description} (read-only: set in {source})")
    if info.lo is not None and info.hi is not None:
        if p.type_.value == ParameterType.PARAMETER_DOUBLE:
            d.floating_point_range = [FloatingPointRange(from_value=float(info.lo), to_value=float(info.hi))]
        elif p.type_.value == ParameterType.PARAMETER_INTEGER:
            d.integer_range = [IntegerRange(from_value=int(info.lo), to_value=int(info.hi), step=1)]
    return d


def declare_read_only(node, prefix: str, cfg, source: str = "the robot YAML") -> list[str]:
    """Declare every leaf of dataclass `cfg` as `<prefix>.<dotted key>`; returns the names. An empty list is
    declared with its type but no value (rclpy would infer a byte array from an empty value)."""
    names = []
    for info in field_infos(cfg, prefix):
        p = _parameter(info)
        empty = isinstance(p.value, list) and not p.value
        node.declare_parameter(info.name, p.type_ if empty else p.value, _descriptor(info, p, source),
                               ignore_override=True)
        names.append(info.name)
    return names
