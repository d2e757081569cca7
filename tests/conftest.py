"""Shared pytest setup: small thread count (the CI machine has 2 cores) and offline Hugging Face."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("LIT_VIDEOR2_TEST_THREADS", "1")))

# Shared session fixtures (synthetic data, tiny models), available to every test module.
from tests.fixtures import *  # noqa: E402,F401,F403
