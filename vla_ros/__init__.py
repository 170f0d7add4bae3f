"""vla_ros: spatial Vision-Language-Action policies on ROS 2 robot arms.

Keep this file free of heavy imports: `import vla_ros` must stay cheap and must never load rclpy.
"""

# The rosidl-generated `vla_ros.msg` may live in another site-packages folder (a colcon install space
# next to a developer checkout); extend the package path so both halves import as one package.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"
