"""The tiny models' tokenizer: a byte-level BPE trained offline on Video-R2 style text, as a ``Qwen2Tokenizer``.

The corpus (:data:`~lit_videor2.data.records.REASONING_INSTRUCTION`, timestamped claims about coloured shapes,
options A-E, generic English) is built in; the Qwen special and added tokens
(:mod:`lit_videor2.demo.tiny_templates`) follow the BPE vocabulary in the public order.
"""

from __future__ import annotations

import json

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer

from lit_videor2.data.records import REASONING_INSTRUCTION
from lit_videor2.demo.tiny_templates import QWEN_ADDED_TOKENS, QWEN_SPECIAL_TOKENS

#: The Qwen2 pre-tokenizer regex (transformers ``Qwen2Tokenizer`` rebuilds exactly this on load).
_QWEN2_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white")
_SHAPES = ("circle", "square", "triangle")
_GENERIC_ENGLISH = """\
You are a helpful assistant. The user asks a question about a video and the assistant answers it.
Watch the video carefully and answer the question. Select the best answer to the following multiple-choice
question based on the video. Respond with only the letter of the correct option. What happens in the video?
What is the colour of the shape? Which object appears first? Which object appears last? When does it happen?
How many shapes appear in the video? How many times does it move? What happens at this time? Where is it?
The video shows a scene with several objects. An object enters from the left side and leaves on the right side.
It is small and it is large. There is one, there are two, there are three, four, five, six, seven, eight, nine, ten.
In the beginning, in the middle and at the end of the clip. The person looks at the screen and points to it.
Let me think step by step. First, I look at each frame. Then I compare the frames. Finally, I choose the option.
I can see that the answer is correct because the evidence in the frames supports it. This is not correct.
Because of this, the answer must be the option that matches what I saw. Hmm, wait, let me check again. Yes.
Question: Options: Answer: Reasoning: the top, the bottom, the left, the right, the centre of the frame.
Seconds, second, minutes, time, start, end, during, until, while, again, stays, remains, changes, colour, color.
"""


def _tokenizer_corpus() -> list[str]:
    """A deterministic corpus of Video-R2 style text: instruction, timestamped claims, questions and options."""
    lines = [REASONING_INSTRUCTION, _GENERIC_ENGLISH]
    verbs = ("appears", "disappears", "moves right", "moves left", "moves up", "moves down", "stops")
    i = 0
    for colour in _COLOURS:
        for shape in _SHAPES:
            for verb in verbs:
                t1, t2 = i % 10, (i * 7 + 3) % 60
                letter = "ABCDE"[i % 5]
                lines.append(
                    f"At 00:{t1:02d} a {colour} {shape} {verb} on the left. At 00:{t2:02d} it moves right. "
                    f"Then the {colour} {shape} disappears at {t2 + 1} seconds. The answer is {letter}."
                )
                lines.append(
                    f"<think>At 00:{t1:02d} a {colour} {shape} appears. The {colour} option is {letter}. "
                    f"So the answer is {letter}.</think><answer>{letter}</answer>"
                )
                i += 1
    for a in _COLOURS:
        for b in _SHAPES:
            lines.append(
                f"Which shape appears first, the {a} {b} or the {_COLOURS[(len(a)) % 7]} one? "
                f"When does the {a} {b} appear? How many {b}s appear before the {a} one? "
                f"Count the shapes after 00:0{len(b)} and before 00:{len(a) + 10}."
            )
    options = " ".join(f"{L}. {c}" for L, c in zip("ABCDE", _COLOURS))
    lines.append(f"Options: {options}. Please answer with the option letter A, B, C, D or E.")
    lines.append(" ".join(str(n) for n in range(0, 130)))
    lines.append(" ".join(f"{m:02d}:{s:02d}" for m in range(3) for s in range(0, 60, 7)))
    lines.append("0.5 1.0 1.5 2.0 2.5 3.0 3.5 seconds; 00:00:05 00:01:30 - to 12.5 s")
    return lines


def build_tiny_tokenizer(vocab_size: int = 1024, *, model_max_length: int = 32768):
    """Train the byte-level BPE on the built-in corpus and wrap it as the public checkpoints' ``Qwen2Tokenizer``.

    Deterministic: the corpus is fixed and ``tokenizers``' BPE trainer breaks ties deterministically.
    """
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    # The corpus is repeated so that template phrases outrank one-off words.
    bpe.train_from_iterator(_tokenizer_corpus() * 4, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]

    tok = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token=None,
        pad_token=None,
        model_max_length=model_max_length,
        errors="replace",
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    # Add the specials one by one in the public order so that their ids are consecutive after the BPE vocab.
    tok.add_special_tokens({"pad_token": QWEN_SPECIAL_TOKENS[0]})
    tok.add_special_tokens({"extra_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    tok.eos_token = "<|im_end|>"
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN_ADDED_TOKENS])
    base = len(model["vocab"])
    for offset, token in enumerate(QWEN_SPECIAL_TOKENS + QWEN_ADDED_TOKENS):
        got = tok.convert_tokens_to_ids(token)
        if got != base + offset:  # pragma: no cover - guards a transformers behaviour change
            raise RuntimeError(f"token {token!r} got id {got}, expected {base + offset}: special-token order changed")
    return tok


__all__ = ["build_tiny_tokenizer"]
