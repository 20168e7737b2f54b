"""ROS-free core: spike I/O, packing, stream checks, simulation, classical reconstruction.

Nothing under ``stir_ros.core`` imports rclpy, ROS message modules or the model code (the layer
contracts in ``.importlinter`` check it; DESIGN.md §2).
"""
