"""ROS-free core: spike I/O, packing, simulation, classical reconstruction, engine.

Nothing under ``stir_ros.core`` imports rclpy or ROS message modules.
"""
