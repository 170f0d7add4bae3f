"""A policy on another machine: the openpi websocket protocol (server and client) and an OpenVLA-OFT HTTP client.
No rclpy here; the wire modules need only numpy, msgpack and websockets."""
