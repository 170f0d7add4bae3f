"""diagnostic_msgs helpers: one DiagnosticStatus from a dict of values."""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}


def status_array(node, name: str, level: str, message: str, values: dict) -> DiagnosticArray:
    st = DiagnosticStatus(level=LEVELS[level], name=name, message=message, hardware_id=node.get_name())
    st.values = [KeyValue(key=str(k), value=f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in values.items()]
    arr = DiagnosticArray(status=[st])
    arr.header.stamp = node.get_clock().now().to_msg()
    return arr
