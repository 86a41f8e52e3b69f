"""Test-wide settings."""

import torch

# Tests use tiny models: one thread is faster for them, and immune to OpenMP oversubscription
# when other processes share the machine's cores.
torch.set_num_threads(1)
