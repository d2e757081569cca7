"""Judge backed by a local Hugging Face causal LM (a path or a cached model id), loaded on first use.

Greedy decoding for answer extraction and the consistency verdict; sampling with the reference VAS settings
(temperature 0.7, top-p 0.8, top-k 20) for the grounding score. Prompts go through the tokenizer's chat template.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lit_videor2.judges.llm import LLMJudge
from lit_videor2.judges.prompts import ChatRequest

__all__ = ["HFJudge"]


class HFJudge(LLMJudge):
    """LLM judge running a local causal LM.

    Args:
        model: directory or model id of a chat model (``AutoModelForCausalLM`` + tokenizer with a chat template).
        device: torch device.
        dtype: ``"auto"`` or a torch dtype name (``"bfloat16"``).
        max_new_tokens: cap on generated tokens (the request's ``max_tokens`` applies when smaller).
        seed: seed of the sampled judgments (grounding score), for reproducibility.
    """

    def __init__(
        self, model: str, device: str = "cpu", dtype: str = "auto", max_new_tokens: int = 256, seed: int = 0
    ) -> None:
        super().__init__()
        self.model_name = model
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self._model = None
        self._tokenizer = None

    def _load(self):
        if self._model is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_name)
            dtype = self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)
            self._model = AutoModelForCausalLM.from_pretrained(self.model_name, dtype=dtype).to(self.device).eval()
        return self._model, self._tokenizer

    @torch.inference_mode()
    def complete(self, requests: Sequence[ChatRequest]) -> list[str | None]:
        model, tokenizer = self._load()
        outs: list[str | None] = []
        for request in requests:
            prompt = tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
            inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
            sampling = request.sampling
            do_sample = float(sampling.get("temperature", 0.0)) > 0
            kwargs = {"max_new_tokens": min(self.max_new_tokens, int(sampling.get("max_tokens", self.max_new_tokens)))}
            if do_sample:
                torch.manual_seed(self.seed)
                kwargs.update(
                    do_sample=True,
                    temperature=float(sampling["temperature"]),
                    top_p=float(sampling.get("top_p", 1.0)),
                    top_k=int(sampling.get("top_k", 0)),
                )
            else:
                kwargs.update(do_sample=False)
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            generated = model.generate(**inputs, pad_token_id=pad, **kwargs)  # [1, L + T]
            new_tokens = generated[0, inputs["input_ids"].shape[1] :]
            outs.append(tokenizer.decode(new_tokens, skip_special_tokens=True))
        return outs
