"""The simulated camera's renderer: hands and faces with known ground truth."""
