"""Training STIR on synthetic spikes (``stir-ros train``)."""
