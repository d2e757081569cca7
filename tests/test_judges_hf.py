"""HFJudge with a tiny randomly initialised causal LM and a word-level tokenizer written in the test."""

import pytest
import torch

from lit_videor2.judges import HFJudge
from lit_videor2.judges.prompts import consistency_request


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    words = ["<pad>", "<eos>", "<unk>", "system", "user", "assistant", "the", "video", "shows", "a", "car", "maybe"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}assistant"
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
    )
    path = tmp_path_factory.mktemp("tiny_judge")
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_hf_judge_generates_and_falls_back(tiny_chat_model):
    judge = HFJudge(tiny_chat_model, max_new_tokens=4)
    completion = "<think>the video shows a car</think><answer>B</answer>"
    replies = judge.complete([consistency_request("q", "a", "b")])
    assert len(replies) == 1 and isinstance(replies[0], str)  # real generation through the chat template
    # a random model's words are never a verdict or a score: one retry each, then the documented fallbacks
    assert judge.consistency([completion]) == [False]
    assert judge.grounding_scores([completion]) == [0.0]
    assert judge.stats["retries"] == 2 and judge.stats["fallbacks"] == 2
