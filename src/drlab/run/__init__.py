"""Running an algorithm: the run directory, the loop's services, signals, checkpoints and logs."""
