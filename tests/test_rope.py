"""3-D mRoPE positions by the original Qwen rule (models/rope.py), and the positions that reach the language model.

The reference below is a plain transcription of transformers 4.51.3's ``Qwen2_5_VLModel.get_rope_index`` (token-id
based: a vision block starts after ``<|vision_start|>``; text resumes at the block's largest position + 1), written
independently of the project's function (which walks ``mm_token_type_ids`` runs). Exact numbers are also pinned by
hand for the cases named in the docs.
"""

from __future__ import annotations

import pytest
import torch

from lit_videor2.models.rope import mrope_positions, token_types

# Token ids of the pure tests.
TXT, VS, VE, IMG, VID = 7, 1, 2, 3, 4
MERGE = 2


def reference_positions(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    image_grid_thw=None,
    video_grid_thw=None,
    second_per_grid_ts=None,
    tokens_per_second: float | None = 2,
    vs: int = VS,
    img: int = IMG,
    vid: int = VID,
) -> torch.Tensor:
    """transformers 4.51.3's rule (Qwen2-VL when ``tokens_per_second`` is None); padding left at 0."""
    out = torch.zeros(3, *input_ids.shape, dtype=torch.long)
    image_index = video_index = 0
    for i in range(input_ids.shape[0]):
        keep = attention_mask[i] == 1
        tokens = input_ids[i][keep].tolist()
        starts = [k for k, t in enumerate(tokens) if t == vs]
        kinds = [tokens[k + 1] for k in starts]
        n_img, n_vid = kinds.count(img), kinds.count(vid)
        pieces, st = [], 0
        for _ in range(n_img + n_vid):
            ed_img = tokens.index(img, st) if img in tokens[st:] and n_img else len(tokens) + 1
            ed_vid = tokens.index(vid, st) if vid in tokens[st:] and n_vid else len(tokens) + 1
            if ed_img < ed_vid:
                t, h, w = image_grid_thw[image_index].tolist()
                spg, ed = 0, ed_img
                image_index, n_img = image_index + 1, n_img - 1
            else:
                t, h, w = video_grid_thw[video_index].tolist()
                spg = second_per_grid_ts[video_index] if second_per_grid_ts is not None else 1.0
                ed = ed_vid
                video_index, n_vid = video_index + 1, n_vid - 1
            gh, gw = h // MERGE, w // MERGE
            st_idx = pieces[-1].max() + 1 if pieces else 0
            pieces.append(torch.arange(ed - st).view(1, -1).expand(3, -1) + st_idx)
            rng = torch.arange(t).view(-1, 1).expand(-1, gh * gw)
            t_index = rng.flatten() if tokens_per_second is None else (rng * spg * tokens_per_second).long().flatten()
            h_index = torch.arange(gh).view(1, -1, 1).expand(t, -1, gw).flatten()
            w_index = torch.arange(gw).view(1, 1, -1).expand(t, gh, -1).flatten()
            pieces.append(torch.stack([t_index, h_index, w_index]) + (ed - st) + st_idx)
            st = ed + t * gh * gw
        if st < len(tokens):
            st_idx = pieces[-1].max() + 1 if pieces else 0
            pieces.append(torch.arange(len(tokens) - st).view(1, -1).expand(3, -1) + st_idx)
        out[:, i, keep] = torch.cat(pieces, dim=1)
    return out


def seq(*parts) -> list[int]:
    """Token ids: ``int`` n -> n text tokens; ``("v", t, h, w)`` / ``("i", t, h, w)`` -> a vision block."""
    ids = []
    for p in parts:
        if isinstance(p, int):
            ids += [TXT] * p
        else:
            kind, t, h, w = p
            ids += [VS] + [VID if kind == "v" else IMG] * (t * h * w // MERGE**2) + [VE]
    return ids


def batch(rows: list[list[int]], side: str = "left") -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ``input_ids`` and ``attention_mask`` ``[B, L]`` (pad id 0)."""
    n = max(map(len, rows))
    ids = torch.zeros(len(rows), n, dtype=torch.long)
    mask = torch.zeros(len(rows), n, dtype=torch.long)
    for i, r in enumerate(rows):
        sl = slice(n - len(r), n) if side == "left" else slice(0, len(r))
        ids[i, sl], mask[i, sl] = torch.tensor(r), 1
    return ids, mask


def ours(ids, mask=None, *, tokens_per_second=2, **grids):
    types = token_types(ids, image_token_id=IMG, video_token_id=VID)
    return mrope_positions(
        types, spatial_merge_size=MERGE, tokens_per_second=tokens_per_second, attention_mask=mask, **grids
    )


def check(rows, side="left", *, tokens_per_second=2, **grids):
    """Our positions equal the reference on every real token, 0 on padding; returns them ``(3, B, L)``."""
    ids, mask = batch(rows, side)
    pos, deltas = ours(ids, mask, tokens_per_second=tokens_per_second, **grids)
    ref = reference_positions(ids, mask, tokens_per_second=tokens_per_second, **grids)
    torch.testing.assert_close(pos, ref, rtol=0, atol=0)
    assert (pos[:, mask == 0] == 0).all()
    real = mask.sum(1)
    torch.testing.assert_close(deltas[:, 0], pos.amax(dim=(0, 2)) + 1 - real, rtol=0, atol=0)
    return pos


# ------------------------------------------------------------------------------------------------ the pure rule


@pytest.mark.parametrize(
    ("seconds", "last_video_time", "next_text"),
    [(1.0, 33, 34), (7.5, 228, 229), (0.5, 18, 19), (2.0, 63, 64)],
    ids=["1s", "7.5s", "0.5s", "2s"],
)
def test_one_video_text_resumes_after_the_largest_position(seconds, last_video_time, next_text):
    """3 text tokens, grid 16x12x16 (16 x 6 x 8 tokens), 2 tokens per second: the numbers of docs/departures.md."""
    rows = [seq(2, ("v", 16, 12, 16), 3)]  # 2 text + <|vision_start|> = 3 tokens before the video
    pos = check(rows, video_grid_thw=torch.tensor([[16, 12, 16]]), second_per_grid_ts=torch.tensor([seconds]))
    video = 3 + 16 * 6 * 8
    assert pos[0, 0, video - 1].item() == last_video_time  # the last temporal grid
    assert pos[:, 0, video].tolist() == [next_text] * 3  # <|vision_end|>: all three axes continue together
    assert pos[:, 0, -1].tolist() == [next_text + 3] * 3


def test_video_between_texts_exact():
    """Every position pinned: 2 text, a 2x4x4 video (2 x 2 x 2 tokens) at 1.5 s per grid, 2 text."""
    rows = [[TXT, VS] + [VID] * 8 + [VE, TXT]]
    pos = check(rows, video_grid_thw=torch.tensor([[2, 4, 4]]), second_per_grid_ts=torch.tensor([1.5]))
    assert pos[0, 0].tolist() == [0, 1, 2, 2, 2, 2, 5, 5, 5, 5, 6, 7]  # time: 2 + floor(1 * 1.5 * 2) = 5
    assert pos[1, 0].tolist() == [0, 1, 2, 2, 3, 3, 2, 2, 3, 3, 6, 7]
    assert pos[2, 0].tolist() == [0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 6, 7]


@pytest.mark.parametrize("seconds", [0.3, 0.625, 1.0, 3.2, 6.25, 12.0])
def test_long_videos_fractional_and_over_a_second_per_grid(seconds):
    rows = [seq(5, ("v", 32, 8, 12), 4)]
    pos = check(rows, video_grid_thw=torch.tensor([[32, 8, 12]]), second_per_grid_ts=torch.tensor([seconds]))
    times = pos[0, 0, 6 : 6 + 32 * 24 : 24]  # the first token of each temporal grid
    assert times.tolist() == [6 + int(i * seconds * 2) for i in range(32)]


def test_two_videos_and_an_image():
    grids = {
        "video_grid_thw": torch.tensor([[4, 4, 4], [2, 8, 4]]),
        "second_per_grid_ts": torch.tensor([2.0, 0.5]),
        "image_grid_thw": torch.tensor([[1, 6, 4]]),
    }
    pos = check([seq(3, ("v", 4, 4, 4), 2, ("i", 1, 6, 4), 1, ("v", 2, 8, 4), 2)], **grids)
    # image: time 0 on every token (Qwen2.5-VL), starting after the first video
    img_start = len(seq(3, ("v", 4, 4, 4), 2)) + 1  # after <|vision_start|>
    assert (pos[0, 0, img_start : img_start + 6] == pos[0, 0, img_start]).all()


def test_left_padding_and_rows_of_different_lengths():
    """Each row of a padded batch gets exactly the positions it gets alone; padding 0; grids consumed in order."""
    rows = [seq(4, ("v", 2, 4, 4), 9), seq(1, ("v", 6, 4, 8), 2), seq(12, ("v", 4, 8, 8), 1)]
    grids = torch.tensor([[2, 4, 4], [6, 4, 8], [4, 8, 8]])
    seconds = torch.tensor([1.0, 0.5, 7.5])
    for side in ("left", "right"):
        together = check(rows, side, video_grid_thw=grids, second_per_grid_ts=seconds)
        ids, mask = batch(rows, side)
        for i, r in enumerate(rows):
            alone, _ = ours(torch.tensor([r]), video_grid_thw=grids[i : i + 1], second_per_grid_ts=seconds[i : i + 1])
            torch.testing.assert_close(together[:, i, mask[i].bool()], alone[:, 0], rtol=0, atol=0)


def test_qwen2_vl_one_time_step_per_grid():
    """Qwen2-VL (no tokens_per_second): time steps by 1 per temporal grid whatever second_per_grid_ts says."""
    rows = [seq(3, ("v", 5, 4, 4), 2), seq(1, ("i", 1, 4, 6), ("v", 3, 4, 4), 1)]
    grids = {"video_grid_thw": torch.tensor([[5, 4, 4], [3, 4, 4]]), "image_grid_thw": torch.tensor([[1, 4, 6]])}
    pos = check(rows, tokens_per_second=None, **grids)
    ids, mask = batch(rows)
    start = int((mask[0] == 0).sum()) + 4
    assert pos[0, 0, start : start + 20 : 4].tolist() == [4, 5, 6, 7, 8]
    assert pos[:, 0, start + 20].tolist() == [9, 9, 9]  # <|vision_end|> after the block's largest position (8)


def test_mismatched_grids_are_errors():
    ids = torch.tensor([seq(2, ("v", 2, 4, 4), 1)])
    with pytest.raises(ValueError, match=r"video_grid_thw\[0\] = \[4, 4, 4\] needs 16 tokens .* has 8 left"):
        ours(ids, video_grid_thw=torch.tensor([[4, 4, 4]]))
    with pytest.raises(ValueError, match="video_grid_thw has 2 grids but the token types hold 1"):
        ours(ids, video_grid_thw=torch.tensor([[2, 4, 4], [2, 4, 4]]))
    with pytest.raises(ValueError, match="more vision tokens of type 2 than video_grid_thw describes"):
        ours(ids)


# ---------------------------------------------------------------------------- through the model: rope_positions


def _model(tiny_models, arch):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(tiny_models(arch)).eval()


def _prompts(processors, arch, side=56):
    from lit_videor2.data.collate import VideoCollator
    from lit_videor2.data.dataset import VideoSample
    from lit_videor2.data.frames import Frames
    from lit_videor2.data.records import VideoRecord

    samples = []
    for seed, (n, fps) in enumerate([(8, 4.0), (4, 0.8)]):  # 0.5 s and 2.5 s per temporal grid
        frames = torch.randint(
            0, 256, (n, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
        )
        record = VideoRecord(
            id=f"r{seed}", video="v.mp4", question="What happens " + "next? " * (3 * seed + 1), answer="A"
        )
        samples.append(VideoSample(record, Frames(frames, [i / fps for i in range(n)], n / fps, "test")))
    return VideoCollator(processors(arch), "prompt")(samples)


def _reference_for(model, ids, mask, grid, seconds):
    cfg = model.config
    tps = cfg.vision_config.tokens_per_second if cfg.model_type == "qwen2_5_vl" else None
    return reference_positions(
        ids,
        mask,
        video_grid_thw=grid,
        second_per_grid_ts=seconds,
        tokens_per_second=tps,
        vs=cfg.vision_start_token_id,
        img=cfg.image_token_id,
        vid=cfg.video_token_id,
    )


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen2_vl"])
def test_rope_positions_follow_the_original_rule(arch, tiny_models, processors):
    from lit_videor2.models.vision import rope_positions

    model = _model(tiny_models, arch)
    b = _prompts(processors, arch)
    assert (b["prompt_attention_mask"] == 0).any()  # left padding present
    seconds = b.get("second_per_grid_ts")
    if arch == "qwen2_5_vl":
        assert seconds.tolist() == [0.5, 2.5]
    ids, mask = b["prompt_input_ids"], b["prompt_attention_mask"]
    pos, _ = rope_positions(model, ids, mask, b["prompt_mm_token_type_ids"], b["video_grid_thw"], seconds)
    ref = _reference_for(model, ids, mask, b["video_grid_thw"], seconds)
    torch.testing.assert_close(pos * mask, ref, rtol=0, atol=0)


def test_qwen3_vl_keeps_the_models_own_rule(tiny_models, processors):
    from lit_videor2.models.vision import rope_positions

    model = _model(tiny_models, "qwen3_vl")
    b = _prompts(processors, "qwen3_vl", side=64)
    args = (b["prompt_input_ids"], b["prompt_attention_mask"], b["prompt_mm_token_type_ids"], b["video_grid_thw"])
    pos, deltas = rope_positions(model, *args)
    own, own_deltas = model.model.get_rope_index(args[0], args[2], video_grid_thw=args[3], attention_mask=args[1])
    torch.testing.assert_close(pos, own, rtol=0, atol=0)
    torch.testing.assert_close(deltas, own_deltas, rtol=0, atol=0)


# ------------------------------------------------------- what reaches the language model: SFT, GRPO and `test`


class LanguageModelPositions:
    """Records the ``position_ids`` of every call of ``model.model.language_model`` (a forward pre-hook)."""

    def __init__(self, model):
        from lit_videor2.models.policy import language_model

        self.calls: list[torch.Tensor] = []
        self.handle = language_model(model).register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        pos = kwargs.get("position_ids")
        assert pos is not None and pos.dim() == 3 and pos.shape[0] in (3, 4), "explicit 3-D positions must be passed"
        self.calls.append(pos[-3:].detach().clone())  # generate() prepends a row of 1-D text positions


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen2_vl"])
def test_sft_loss_forward_positions(arch, tiny_models, synth_dir):
    from lit_videor2.data.datamodule import VideoDataModule
    from lit_videor2.rollout.forward import assistant_token_loss
    from tests.fixtures import SMALL

    dm = VideoDataModule(
        processor=str(tiny_models(arch)),
        train_file=str(synth_dir / "train.json"),
        batch_size=3,
        sampling=SMALL,
        shuffle=False,
        num_workers=0,
    )
    batch = next(iter(dm.train_dataloader()))
    mask = batch["attention_mask"]
    assert mask.sum(1).unique().numel() > 1  # rows of different lengths (padded)
    model = _model(tiny_models, arch)
    seen = LanguageModelPositions(model)
    assistant_token_loss(model, batch)
    ref = _reference_for(model, batch["input_ids"], mask, batch["video_grid_thw"], batch.get("second_per_grid_ts"))
    assert len(seen.calls) == 1
    torch.testing.assert_close(seen.calls[0], ref, rtol=0, atol=0)


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per-completion"])
def test_grpo_generation_and_logprob_positions(share, tiny_models, processors):
    from lit_videor2.rollout import PromptBatch, generate_group, sequence_logprobs, stop_token_ids

    g = 2
    model = _model(tiny_models, "qwen2_5_vl")
    model.model.visual.requires_grad_(False)
    prompt = PromptBatch.from_collated(_prompts(processors, "qwen2_5_vl"))
    seen = LanguageModelPositions(model)
    rollout = generate_group(
        model,
        prompt,
        group_size=g,
        max_new_tokens=5,
        eos_token_ids=stop_token_ids(processors("qwen2_5_vl")),
        share_prefix=share,
        generator=torch.Generator().manual_seed(0),
    )
    lp, t = rollout.prompt_length, rollout.completion_length
    ref = _reference_for(
        model,
        rollout.input_ids(),
        rollout.attention_mask(),
        prompt.video_grid_thw.repeat_interleave(g, 0),
        prompt.second_per_grid_ts.repeat_interleave(g, 0),
    )  # (3, N, Lp + T): the original rule over prompt + completion
    mask = rollout.attention_mask()
    torch.testing.assert_close(rollout.position_ids * mask, ref, rtol=0, atol=0)

    def covers_in_order(calls):
        """Consecutive calls cover consecutive spans of the sequence (a call with B rows: one row per prompt)."""
        start = 0
        for pos in calls:
            rows = slice(None) if pos.shape[1] == ref.shape[1] else slice(None, None, g)
            span = slice(start, start + pos.shape[-1])
            torch.testing.assert_close(pos * mask[rows, span], ref[:, rows, span], rtol=0, atol=0)
            start += pos.shape[-1]
        return start

    assert covers_in_order(seen.calls) == lp + t - 1  # prefill, then one call per fed completion token
    for share_prompt in (True, False):
        seen.calls.clear()
        sequence_logprobs(model, rollout, share_prompt=share_prompt, reuse_vision=share)
        assert covers_in_order(seen.calls) >= lp + t - 1


@pytest.mark.slow
def test_test_stage_positions_settings_logged(tmp_path, tiny_models, synth_dir):
    """``lit_videor2 test``'s generation: original-rule positions at the language model; settings in hparams and
    results.json."""
    import json

    import lightning as L

    from lit_videor2.data.datamodule import VideoDataModule
    from lit_videor2.models.policy import PolicySpec
    from lit_videor2.modules.evaluation import EvalModule
    from lit_videor2.rollout.engine import GenerationSettings
    from tests.fixtures import SMALL

    folder = tiny_models("qwen2_5_vl")
    settings = GenerationSettings(max_new_tokens=4)
    module = EvalModule(
        PolicySpec(path=str(folder), attn_implementation="sdpa"),
        predictions=str(tmp_path / "predictions.jsonl"),
        generation=settings,
        temporal=False,
    )
    assert module.hparams["generation"] == settings
    module.configure_model()
    seen = LanguageModelPositions(module.model)
    batches = []

    class Batches(L.Callback):
        def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            batches.append(batch)

    dm = VideoDataModule(
        processor=str(folder), test_file=str(synth_dir / "val.json"), mode="prompt", eval_batch_size=2, sampling=SMALL
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Batches()],
        default_root_dir=str(tmp_path),
    )
    trainer.test(module, datamodule=dm)
    prefills = [i for i, p in enumerate(seen.calls) if p.shape[-1] > 1]
    assert len(prefills) == len(batches) == 2
    for k, (i, b) in enumerate(zip(prefills, batches)):
        mask = b["prompt_attention_mask"]
        ref = _reference_for(module.model, b["prompt_input_ids"], mask, b["video_grid_thw"], b["second_per_grid_ts"])
        torch.testing.assert_close(seen.calls[i] * mask, ref, rtol=0, atol=0)
        end = prefills[k + 1] if k + 1 < len(prefills) else len(seen.calls)
        for j, step in enumerate(seen.calls[i + 1 : end]):  # text after the prompt: +1 per token on every axis
            torch.testing.assert_close(step, ref[..., -1:] + j + 1, rtol=0, atol=0)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["generation"] == settings.as_dict()


@pytest.mark.slow
def test_validation_generation_positions_and_settings(tmp_path, tiny_models, synth_dir):
    """SFT validation: the loss forward and the generation (the engine of `test`) follow the original rule; the
    explicit settings are the module's hyper-parameters."""
    import functools

    import lightning as L

    from lit_videor2.data.datamodule import VideoDataModule
    from lit_videor2.models.policy import PolicySpec
    from lit_videor2.modules.base import GenerationEval
    from lit_videor2.modules.sft import SFTModule
    from tests.fixtures import SMALL

    folder = tiny_models("qwen2_5_vl")
    settings = GenerationEval(max_new_tokens=3, max_batches=1)
    module = SFTModule(
        policy=PolicySpec(path=str(folder), attn_implementation="sdpa"),
        optimizer=functools.partial(torch.optim.SGD, lr=0.0),
        generation_eval=settings,
    )
    assert module.hparams["generation_eval"] == settings
    module.configure_model()
    seen = LanguageModelPositions(module.model)
    val_batches = []

    class OnlyValidation(L.Callback):
        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            seen.calls.clear()
            val_batches.append(batch)

    dm = VideoDataModule(
        processor=str(folder),
        train_file=str(synth_dir / "train.json"),
        val_file=str(synth_dir / "val.json"),
        batch_size=2,
        sampling=SMALL,
        num_workers=0,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        val_check_interval=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[OnlyValidation()],
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, datamodule=dm)
    assert len(val_batches) == 1 and "val/format" in trainer.callback_metrics
    b = val_batches[0]
    full = _reference_for(
        module.model, b["input_ids"], b["attention_mask"], b["video_grid_thw"], b["second_per_grid_ts"]
    )
    torch.testing.assert_close(seen.calls[0], full, rtol=0, atol=0)  # val/loss forward
    mask = b["prompt_attention_mask"]
    prompt = _reference_for(module.model, b["prompt_input_ids"], mask, b["video_grid_thw"], b["second_per_grid_ts"])
    torch.testing.assert_close(seen.calls[1] * mask, prompt, rtol=0, atol=0)  # generation prefill
    for j, step in enumerate(seen.calls[2:]):
        torch.testing.assert_close(step, prompt[..., -1:] + j + 1, rtol=0, atol=0)
