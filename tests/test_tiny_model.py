"""The tiny model kit: folders that load like public Qwen-VL checkpoints and run a video forward/backward."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor
from transformers.video_utils import VideoMetadata

from lit_videor2.data.records import REASONING_INSTRUCTION
from lit_videor2.demo.tiny import build_tiny_model, model_class, tiny_model_main
from lit_videor2.demo.tiny_configs import ARCHS, default_tiny_kwargs
from lit_videor2.models.rope import mrope_positions
from lit_videor2.models.vision import rope_positions

PROCESSOR_CLASS = {"qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen2_vl": "Qwen2VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}
VIDEO_PROCESSOR_CLASS = {
    "qwen2_5_vl": "Qwen2VLVideoProcessor",
    "qwen2_vl": "Qwen2VLVideoProcessor",
    "qwen3_vl": "Qwen3VLVideoProcessor",
}
#: Frame side that the processor keeps unchanged: a multiple of patch_size * merge_size (14*2, 16*2).
FRAME_SIDE = {"qwen2_5_vl": 56, "qwen2_vl": 56, "qwen3_vl": 64}
TAGS = ("<think>", "</think>", "<answer>", "</answer>")


@pytest.fixture(scope="module", params=ARCHS)
def tiny(request, tmp_path_factory):
    arch = request.param
    return arch, build_tiny_model(arch, tmp_path_factory.mktemp(arch))


@pytest.fixture(scope="module")
def qwen2_5_path(tmp_path_factory):
    return build_tiny_model("qwen2_5_vl", tmp_path_factory.mktemp("qwen2_5_vl_meta"))


def _video_inputs(processor, arch: str, metadata: VideoMetadata, num_frames: int = 8, with_answer: bool = True):
    """The processor call documented in lit_videor2.demo.tiny: pre-sampled uint8 frames kept at their size."""
    side = FRAME_SIDE[arch]
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Which shape appears?"}]}]
    if with_answer:
        messages.append(
            {"role": "assistant", "content": "<think>At 00:03 a red circle appears.</think><answer>A</answer>"}
        )
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=not with_answer)
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (num_frames, 3, side, side), dtype=torch.uint8, generator=g)  # (T, 3, H, W)
    # Qwen3-VL's size bounds the pixels of the whole clip (T*H*W); Qwen2/2.5-VL's bound one frame (H*W).
    pixels = side * side * (num_frames if arch == "qwen3_vl" else 1)
    return processor(
        text=[text],
        videos=[frames],
        video_metadata=[metadata],
        do_sample_frames=False,
        size={"shortest_edge": pixels, "longest_edge": pixels},
        cap_pixels_per_frame=False,
        return_tensors="pt",
    )


def test_loads_like_a_public_checkpoint(tiny):
    arch, path = tiny
    processor = AutoProcessor.from_pretrained(path)
    assert type(processor).__name__ == PROCESSOR_CLASS[arch]
    assert type(processor.video_processor).__name__ == VIDEO_PROCESSOR_CLASS[arch]
    assert type(processor.tokenizer).__name__ == "Qwen2Tokenizer"
    model = model_class(arch).from_pretrained(path)
    auto = AutoModelForImageTextToText.from_pretrained(path)
    assert type(auto) is type(model)
    for (name, a), (_, b) in zip(model.state_dict().items(), auto.state_dict().items()):
        assert torch.equal(a, b), name

    tok, cfg = processor.tokenizer, model.config
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>") == processor.video_token_id
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>") == processor.image_token_id
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>" and tok.bos_token is None
    assert cfg.text_config.eos_token_id == tok.eos_token_id
    assert model.generation_config.eos_token_id == [tok.eos_token_id, tok.pad_token_id]
    assert cfg.text_config.vocab_size >= len(tok)
    # the public special-token order: <|endoftext|>, <|im_start|>, <|im_end|>, ... consecutive ids
    base = tok.convert_tokens_to_ids("<|endoftext|>")
    assert [tok.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>", "<|video_pad|>")] == [
        base + 1,
        base + 2,
        base + 13,
    ]

    n = sum(p.numel() for p in model.parameters())
    assert 100_000 < n < 5_000_000
    assert json.loads((path / "tiny_model.json").read_text())["parameters"]["total"] == n


def test_tokenizer_tags_and_roundtrip(tiny):
    arch, path = tiny
    tok = AutoProcessor.from_pretrained(path).tokenizer
    for tag in TAGS:
        assert len(tok(tag, add_special_tokens=False).input_ids) == 1, tag
    completion = "<think>At 00:03 a red circle appears. Then it moves right.</think><answer>B</answer>"
    ids = tok(completion + "<|im_end|>", add_special_tokens=False).input_ids
    # tags survive skip_special_tokens (the format reward reads decoded text); <|im_end|> does not
    assert tok.decode(ids, skip_special_tokens=True) == completion
    instr = tok(REASONING_INSTRUCTION, add_special_tokens=False).input_ids
    assert tok.decode(instr) == REASONING_INSTRUCTION
    assert len(instr) < len(REASONING_INSTRUCTION) / 3  # trained on this text: a few characters per token
    unseen = "Zebra quartz 42! é"  # byte-level: anything round-trips
    assert tok.decode(tok(unseen, add_special_tokens=False).input_ids) == unseen


def test_chat_template(tiny):
    arch, path = tiny
    processor = AutoProcessor.from_pretrained(path)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    user = "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n"
    # Qwen2/2.5-VL templates add the default system prompt; Qwen3-VL's does not
    system = "" if arch == "qwen3_vl" else "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    assert text == system + user


@pytest.mark.parametrize(
    ("total", "fps", "indices", "seconds_per_grid"),
    [
        (8, 2.0, list(range(8)), 1.0),  # a source at 2 fps, every frame: temporal_patch_size / fps
        (120, 30.0, list(range(0, 120, 15)), 1.0),  # 4 s at 30 fps, every 15th frame: sampled at 2 fps
        # pitfall: transformers averages over the WHOLE source (len(indices) / total_num_frames * fps), so frames
        # taken at 2 fps from only the first half of an 8 s video count as 1 fps; sample over the whole video
        (240, 30.0, list(range(0, 120, 15)), 2.0),
        (16, 2.0, list(range(0, 16, 2)), 2.0),  # every other frame of a 2 fps source: 1 fps
    ],
)
def test_second_per_grid_ts_follows_metadata(qwen2_5_path, total, fps, indices, seconds_per_grid):
    processor = AutoProcessor.from_pretrained(qwen2_5_path)
    meta = VideoMetadata(total_num_frames=total, fps=fps, frames_indices=indices)
    inputs = _video_inputs(processor, "qwen2_5_vl", meta)
    # sampled fps = len(indices) / total * fps; second_per_grid_ts = temporal_patch_size / sampled fps
    expected = processor.video_processor.temporal_patch_size / (len(indices) / total * fps)
    assert inputs["second_per_grid_ts"].tolist() == pytest.approx([expected]) == [seconds_per_grid]


def test_video_forward_backward(tiny):
    arch, path = tiny
    processor = AutoProcessor.from_pretrained(path)
    model = model_class(arch).from_pretrained(path)
    # every other frame of a 16-frame, 2 fps source -> frame times 0, 1, ..., 7 s
    meta = VideoMetadata(total_num_frames=16, fps=2.0, frames_indices=list(range(0, 16, 2)))
    inputs = _video_inputs(processor, arch, meta)

    side, merge = FRAME_SIDE[arch], processor.video_processor.merge_size
    patch = processor.video_processor.patch_size
    assert inputs["video_grid_thw"].tolist() == [[8 // 2, side // patch, side // patch]]  # size kept
    n_video = int(inputs["video_grid_thw"].prod()) // merge**2
    ids = inputs["input_ids"][0]
    assert int((ids == model.config.video_token_id).sum()) == n_video
    assert "mm_token_type_ids" in inputs
    assert int((inputs["mm_token_type_ids"][0] == 2).sum()) == n_video  # 2 = video
    text = processor.tokenizer.decode(ids)
    if arch == "qwen2_5_vl":
        assert inputs["second_per_grid_ts"].tolist() == [2.0]  # temporal patch 2 / sampled fps 1
    else:
        assert "second_per_grid_ts" not in inputs
    if arch == "qwen3_vl":
        # One "<t seconds>" stamp and one vision block per frame pair, t = mean time of the pair (0 and 1 s -> 0.5 s),
        # each block holding a quarter of the video tokens. Whether the template's own <|vision_start|> ...
        # <|vision_end|> pair stays around the blocks is a release detail (5.24 keeps it, 5.25 drops it): not checked.
        stamped = re.findall(r"<(\d+\.\d) seconds><\|vision_start\|>((?:<\|video_pad\|>)+)<\|vision_end\|>", text)
        assert [t for t, _ in stamped] == ["0.5", "2.5", "4.5", "6.5"]
        assert [len(pads) // len("<|video_pad|>") for _, pads in stamped] == [n_video // 4] * 4
        assert len(re.findall(r"<\d+\.\d seconds>", text)) == 4  # no other stamp
        # positions by the original Qwen3-VL rule: each frame pair a block of temporal size 1 after its stamp
        grids = inputs["video_grid_thw"].repeat_interleave(inputs["video_grid_thw"][:, 0], dim=0)
        grids[:, 0] = 1
        original, _ = mrope_positions(
            inputs["mm_token_type_ids"], spatial_merge_size=merge, video_grid_thw=grids, attention_mask=None
        )
    else:
        assert "<|vision_start|>" + "<|video_pad|>" * n_video + "<|vision_end|>" in text
        tps = model.config.vision_config.tokens_per_second if arch == "qwen2_5_vl" else None
        original, _ = mrope_positions(
            inputs["mm_token_type_ids"],
            spatial_merge_size=merge,
            video_grid_thw=inputs["video_grid_thw"],
            second_per_grid_ts=inputs.get("second_per_grid_ts"),
            tokens_per_second=tps,
        )
    positions, _ = rope_positions(
        model,
        inputs["input_ids"],
        inputs["attention_mask"],
        inputs["mm_token_type_ids"],
        inputs["video_grid_thw"],
        inputs.get("second_per_grid_ts"),
    )
    assert torch.equal(positions, original)

    labels = inputs["input_ids"].clone()
    labels[inputs["mm_token_type_ids"] != 0] = -100
    out = model(**inputs, labels=labels)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    vision_grad = sum(p.grad.abs().sum() for p in model.model.visual.parameters() if p.grad is not None)
    lm_grad = model.lm_head.weight.grad
    assert vision_grad > 0, "no gradient reached the vision tower: the video was not used"
    assert lm_grad is not None and lm_grad.abs().sum() > 0


def test_same_seed_same_weights(tmp_path):
    a = build_tiny_model("qwen2_vl", tmp_path / "a", seed=3, hidden_size=32, layers=1)
    b = build_tiny_model("qwen2_vl", tmp_path / "b", seed=3, hidden_size=32, layers=1)
    c = build_tiny_model("qwen2_vl", tmp_path / "c", seed=4, hidden_size=32, layers=1)
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()


def test_cli_entry_and_sizes(tmp_path):
    path = tiny_model_main(["--arch", "qwen3_vl", "--out", str(tmp_path), "--hidden-size", "32", "--layers", "1"])
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["text_config"]["hidden_size"] == 32 and cfg["text_config"]["num_hidden_layers"] == 1
    assert sum(cfg["text_config"]["rope_parameters"]["mrope_section"]) == 32 // 4 // 2  # head_dim / 2
    assert default_tiny_kwargs()["hidden_size"] == 64


def test_bad_arguments_say_what_is_allowed(tmp_path):
    with pytest.raises(ValueError, match="qwen2_5_vl, qwen2_vl, qwen3_vl"):
        build_tiny_model("llava", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_heads"):
        build_tiny_model("qwen2_vl", tmp_path, hidden_size=30)
