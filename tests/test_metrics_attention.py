"""Final-layer attention capture and visual reliance on a tiny randomly initialised Qwen2.5-VL."""

import pytest
import torch

from lit_videor2.metrics import final_layer_attention, visual_reliance
from lit_videor2.metrics import functional as F

VIDEO, START, END = 61, 62, 63
T, H, W = 2, 4, 4  # grid: 32 patches -> 8 video tokens after the 2x2 merge


@pytest.fixture(scope="module")
def tiny_qwen25_vl():
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=64,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=0,
            rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
        ),
        vision_config=dict(
            depth=1,
            hidden_size=32,
            out_hidden_size=64,
            num_heads=2,
            intermediate_size=64,
            patch_size=2,
            temporal_patch_size=2,
            spatial_merge_size=2,
            in_channels=3,
            window_size=8,
            fullatt_block_indexes=[0],
        ),
        image_token_id=60,
        video_token_id=VIDEO,
        vision_start_token_id=START,
        vision_end_token_id=END,
    )
    torch.manual_seed(0)
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def _inputs():
    n_video = T * H * W // 4
    ids = torch.tensor(
        [
            [2, 3, START] + [VIDEO] * n_video + [END, 4, 5, 6, 7, 8, 9],
            [0, 0, START] + [VIDEO] * n_video + [END, 4, 5, 10, 11, 12, 13],  # left padded
        ]
    )
    mask = torch.ones_like(ids)
    mask[1, :2] = 0
    torch.manual_seed(1)
    return dict(
        input_ids=ids,
        attention_mask=mask,
        pixel_values_videos=torch.randn(2 * T * H * W, 3 * 2 * 2 * 2),
        video_grid_thw=torch.tensor([[T, H, W]] * 2),
    )


def _eager_last_layer(model, inputs):
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            return model(**inputs, output_attentions=True).attentions[-1]  # [B, H, L, L]
    finally:
        model.set_attn_implementation("sdpa")


def test_final_layer_attention_equals_eager(tiny_qwen25_vl, monkeypatch):
    model, inputs = tiny_qwen25_vl, _inputs()
    calls = []
    original = F._capture_attention
    monkeypatch.setattr(
        F, "_capture_attention", lambda module, *a, **k: calls.append(module) or original(module, *a, **k)
    )
    attn = final_layer_attention(model, **inputs)
    assert len(calls) == 1 and calls[0] is model.model.language_model.layers[-1].self_attn  # final layer only
    assert model.model.language_model.layers[-1].self_attn.config is model.config.text_config  # restored
    reference = _eager_last_layer(model, inputs)
    valid = inputs["attention_mask"].bool()  # rows of padding tokens are meaningless in both
    torch.testing.assert_close(attn[0], reference[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(attn[1][:, valid[1]], reference[1][:, valid[1]], rtol=1e-5, atol=1e-6)
    # without an attention mask the causal mask is built by the capture itself
    single = {k: v[:1] for k, v in inputs.items() if k != "pixel_values_videos"}
    single["pixel_values_videos"] = inputs["pixel_values_videos"][: T * H * W]
    no_mask = final_layer_attention(model, **{k: v for k, v in single.items() if k != "attention_mask"})
    torch.testing.assert_close(no_mask, _eager_last_layer(model, single), rtol=1e-5, atol=1e-6)


def test_visual_reliance_matches_reference(tiny_qwen25_vl):
    model, inputs = tiny_qwen25_vl, _inputs()
    generated = torch.zeros_like(inputs["input_ids"], dtype=torch.bool)
    generated[:, -4:] = True  # the last 4 tokens were generated
    value = visual_reliance(model, generated_mask=generated, **inputs)
    reference = _eager_last_layer(model, inputs)
    video = inputs["input_ids"] == VIDEO
    masses = [
        sum(float(reference[b, h, q][video[b]].sum()) for h in range(reference.shape[1])) / reference.shape[1]
        for b in range(2)
        for q in range(reference.shape[2])
        if generated[b, q]
    ]
    assert float(value) == pytest.approx(sum(masses) / len(masses), rel=1e-5)
    assert 0.0 < float(value) < 1.0
