"""``lit_videor2 ask`` on a tiny random model and a synthetic video.

A random tiny model writes arbitrary text, so the end-to-end test checks the structure of what is printed;
the parsing of reasoning, answer and cited timestamps is tested on a fixed completion by replacing the
generation step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lit_videor2.rollout.engine as generation
from lit_videor2.ask import AskResult, cited_timestamps, format_result, lettered, parse_completion
from lit_videor2.cli import main as cli_main

SMALL = ["--fps", "1", "--max-frames", "4", "--min-pixels", "3136", "--max-pixels", "3136", "--device", "cpu"]
FIXED = (
    "<think>At 00:02 the red circle appears. From 3 to 5 seconds the square moves left. "
    "Around 00:30 the screen fades.</think>\n<answer>A</answer>"
)


@pytest.fixture(scope="module")
def synth_video(tmp_path_factory) -> Path:
    from lit_videor2.demo.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("ask_synth")
    generate_dataset(out, num_train=1, num_val=1, seed=0)
    return out / json.loads((out / "val.json").read_text())[0]["video"]


def _argv(model: Path, video: Path, *extra: str) -> list[str]:
    return ["ask", "--model", str(model), "--video", str(video), "--question", "What appears first?", *SMALL, *extra]


def test_ask_tiny_model_prints_three_sections(tiny_model_dir, synth_video, capsys):
    result = cli_main(
        _argv(tiny_model_dir, synth_video, "--options", "red circle", "blue square", "--max-new-tokens", "8")
    )
    out = capsys.readouterr().out
    assert isinstance(result, AskResult)
    sections = [out.index(h) for h in ("== reasoning ==", "== answer ==", "== cited timestamps ==")]
    assert sections == sorted(sections)
    assert result.options == ["A. red circle", "B. blue square"]  # letters added to bare options
    assert result.duration is not None and 6.0 <= result.duration <= 10.0  # synthetic clips last 6-10 s
    assert 2 <= len(result.frame_times) <= 4 and result.frame_times == sorted(result.frame_times)
    assert result.completion.strip() in out  # a random model writes no tags: the raw completion is shown


def test_ask_fixed_completion(tiny_model_dir, synth_video, capsys, monkeypatch):
    """Same path, generation replaced: the printed answer and timestamps come from the completion."""
    seen = {}

    def fake_generate(model, tokenizer, batch, settings, **kwargs):
        seen.update(settings=settings, prompt_len=batch["prompt_input_ids"].shape[1])
        seen.update(question=batch["columns"]["question"][0])
        return generation.Completions([FIXED], None, [0])

    monkeypatch.setattr(generation, "generate_completions", fake_generate)
    result = cli_main(_argv(tiny_model_dir, synth_video, "--options", "A. red circle", "B. blue square"))
    out = capsys.readouterr().out
    assert seen["settings"] == generation.GenerationSettings(max_new_tokens=512)  # greedy, default budget
    assert seen["question"] == "What appears first?\nOptions:\nA. red circle\nB. blue square"
    assert "A  (A. red circle)" in out
    assert [c.label for c in result.citations] == ["00:02", "00:03-00:05", "00:30"]
    assert [c.beyond_video for c in result.citations] == [False, False, True]  # the clip is shorter than 30 s
    assert "00:30         Around 00:30 the screen fades.  [beyond the end of the video]" in out
    assert "From 3 to 5 seconds the square moves left." in out


@pytest.mark.parametrize(
    "completion,reasoning,answer,letter,labels",
    [
        (FIXED, FIXED[7 : FIXED.index("</think>")], "A", "A", ["00:02", "00:03-00:05", "00:30"]),
        # no tags: no reasoning/answer, timestamps looked for in the whole text
        ("the dog runs at 1:05", None, None, None, ["01:05"]),
        # the answer names the option by its text; an open range is kept open
        (
            "<think>From 00:12 to end it rains.</think><answer>blue square</answer>",
            "From 00:12 to end it rains.",
            "blue square",
            "B",
            ["00:12-end"],
        ),
        # timestamps inside <answer> are not citations of the reasoning
        ("<answer>at 00:04</answer>", None, "at 00:04", None, []),
    ],
)
def test_parse_completion(completion, reasoning, answer, letter, labels):
    r = parse_completion(completion, ["A. red circle", "B. blue square"], duration=8.0)
    assert (r.reasoning, r.answer, r.answer_letter) == (reasoning, answer, letter)
    assert [c.label for c in r.citations] == labels


def test_format_sections_when_missing():
    text = format_result(parse_completion("", [], duration=None))
    assert "(empty completion)" in text and "(no <answer> block)" in text and "(none)" in text


def test_cited_timestamps_fractional_and_sentence():
    cites = cited_timestamps("Nothing yet. At 12.5s the ball drops!\nLater, at 01:00:05 it stops.", duration=None)
    assert [(c.label, c.text) for c in cites] == [
        ("00:12.5", "At 12.5s the ball drops!"),
        ("01:00:05", "Later, at 01:00:05 it stops."),
    ]


def test_lettered_keeps_existing_letters():
    assert lettered(["A. x", "B. y"]) == ["A. x", "B. y"]
    assert lettered(["x", "y", " "]) == ["A. x", "B. y"]


def test_ask_missing_video(tiny_model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="video not found"):
        cli_main(_argv(tiny_model_dir, tmp_path / "none.mp4"))


def test_ask_batch_is_the_data_modules(tiny_model_dir, synth_video, tmp_path, monkeypatch):
    """``ask`` builds its batch through the data module's path: the same tensors as a ``predict`` batch of the
    same record with the same frame settings (issue 28: it rebuilt the pipeline by hand)."""
    import torch

    from lit_videor2.data.datamodule import VideoDataModule
    from lit_videor2.data.sampling import FrameSampling

    seen = {}

    def fake_generate(model, tokenizer, batch, settings, **kwargs):
        seen["batch"] = batch
        return generation.Completions([FIXED], None, [0])

    monkeypatch.setattr(generation, "generate_completions", fake_generate)
    cli_main(_argv(tiny_model_dir, synth_video))
    record = {
        "id": "ask",
        "video": str(synth_video),
        "conversations": [
            {"from": "human", "value": "<video>\nWhat appears first?"},
            {"from": "gpt", "value": "<answer>A</answer>"},
        ],
    }
    (tmp_path / "one.json").write_text(json.dumps([record]))
    sampling = FrameSampling(fps=1, min_frames=4, max_frames=4, min_pixels=3136, max_pixels=3136)
    dm = VideoDataModule(
        processor=str(tiny_model_dir), predict_file=str(tmp_path / "one.json"), num_workers=0, sampling=sampling
    )
    expected = next(iter(dm.predict_dataloader()))
    got = seen["batch"]
    tensors = [k for k, v in expected.items() if isinstance(v, torch.Tensor)]
    assert "prompt_input_ids" in tensors and set(tensors) <= set(got)
    for key in tensors:
        torch.testing.assert_close(got[key], expected[key], atol=0, rtol=0, msg=key)
    assert got["columns"]["frame_times"] == expected["columns"]["frame_times"]
