"""`drlab sweep`: a grid of hyperparameter values x seeds (grid.py, values.py), run on a backend
(backend.py: the seam; local.py: a process pool), summarised as a table and a plot (summary.py);
command.py runs the whole command."""
