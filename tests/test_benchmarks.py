"""Benchmark adapters on small hand-made samples in each public layout (tests/data/benchmarks/).

Every converted file must load through ``load_records``; the checks look at ids, answer letters, problem
types, option lines in the question, video paths and the error messages for malformed rows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lit_videor2.benchmarks import ADAPTERS, BenchmarkFormatError, Skips, convert, write_records
from lit_videor2.benchmarks.common import letter_for_answer, split_question_options
from lit_videor2.benchmarks.general import segment_name
from lit_videor2.cli import main as cli_main
from lit_videor2.data.schema import load_records

DATA = Path(__file__).parent / "data" / "benchmarks"


def _load(records: list[dict], tmp_path: Path, name: str = "out.json") -> dict:
    """Write, re-read with the project's loader, return ``id -> VideoRecord``."""
    out = write_records(records, tmp_path / name)
    loaded = load_records(out).records
    assert len(loaded) == len(records)
    return {r.id: r for r in loaded}


# (benchmark, source, expected {id: (problem_type, answer, video, number of options)})
CASES = [
    (
        "mvbench",
        "mvbench",
        {
            "mvbench/action_count/0": ("multiple choice", "B", "video/perception/videos/clip_001.mp4", 3),
            "mvbench/action_count/1": ("multiple choice", "C", "video/perception/videos/clip_002.mp4", 3),
            "mvbench/action_localization/0": ("multiple choice", "C", "video/sta/sta_video/sta_0001.mp4", 4),
        },
    ),
    (
        "videomme",
        "videomme/test.json",
        {
            "videomme/001-1": ("multiple choice", "B", "data/vidAAA111.mp4", 4),
            "videomme/001-2": ("multiple choice", "A", "data/vidAAA111.mp4", 4),
        },
    ),
    (
        "tempcompass",
        "tempcompass/multi-choice.json",
        {
            "tempcompass/900000001/action/0": ("multiple choice", "B", "videos/900000001.mp4", 3),
            "tempcompass/900000001/action/1": ("multiple choice", "C", "videos/900000001.mp4", 3),
            "tempcompass/900000001/speed/0": ("multiple choice", "A", "videos/900000001.mp4", 4),
            "tempcompass/900000001_reverse/direction/0": ("multiple choice", "B", "videos/900000001_reverse.mp4", 2),
        },
    ),
    (
        "tempcompass",
        "tempcompass/multi-choice_flat.jsonl",
        {
            "tempcompass/900000002/order/0": ("multiple choice", "A", "videos/900000002.mp4", 2),
            "tempcompass/900000002/order/1": ("multiple choice", "B", "videos/900000002.mp4", 2),
        },
    ),
    (
        "videommmu",
        "videommmu",
        {
            "videommmu/test_Math_12": ("numerical", "3.5", "Science/test_Math_12.mp4", 0),
            "videommmu/test_Computer_Science_7": ("multiple choice", "B", "Engineering/test_Computer_Science_7.mp4", 3),
            "videommmu/test_Economics_2": (
                "free-form",
                "production possibility frontier",
                "Business/test_Economics_2.mp4",
                0,
            ),
            "videommmu/validation_Art_Theory_3": ("multiple choice", "A", "Art/validation_Art_Theory_3.mp4", 4),
        },
    ),
    (
        "mmvu",
        "mmvu/validation.json",
        {
            "mmvu/validation_0": ("multiple choice", "B", "videos/Chemistry/0.mp4", 5),
            "mmvu/validation_1": ("free-form", "Breadth-First Search", "videos/Computer_Science/0.mp4", 0),
            "mmvu/validation_2": ("numerical", "12", "videos/Mechanics/3.mp4", 0),
        },
    ),
    (
        "vsibench",
        "vsibench/test.json",
        {
            "vsibench/0": ("regression", "4", "arkitscenes/41069025.mp4", 0),
            "vsibench/1": ("regression", "2.5", "scannet/scene0011_00.mp4", 0),
            "vsibench/2": ("multiple choice", "C", "scannetpp/0a5c013435.mp4", 3),
        },
    ),
    ("mlvu", "mlvu", {"mlvu/1_plotQA/0": ("multiple choice", "C", "video/1_plotQA/movie101_12.mp4", 4)}),
    (
        "longvideobench",
        "longvideobench/lvb_val.json",
        {"longvideobench/abcDEF123_0": ("multiple choice", "C", "videos/abcDEF123.mp4", 4)},
    ),
    (
        "videomathqa",
        "videomathqa",  # the download folder: only the MCQ file is read
        {
            "videomathqa/7": ("multiple choice", "C", "videos/vmqa_0007.mp4", 5),
            "videomathqa/31": ("multiple choice", "A", "videos/vmqa_0031.mp4", 5),
        },
    ),
    (
        "videomathqa",
        "videomathqa/videomathqa_mbin_test.json",  # multi-binary: one record per pair
        {
            "videomathqa/7-0": ("multiple choice", "A", "videos/vmqa_0007.mp4", 2),
            "videomathqa/7-1": ("multiple choice", "B", "videos/vmqa_0007.mp4", 2),
        },
    ),
    (
        "minerva",
        "minerva/minerva.json",
        {
            "minerva/dQw4w9WgXcQ_q1": ("multiple choice", "C", "dQw4w9WgXcQ.mp4", 5),
            "minerva/abcdefghijk_q3": ("multiple choice", "A", "abcdefghijk.mp4", 5),
        },
    ),
    (
        "scivideobench",
        "scivideobench/scivideobench_1k.jsonl",
        {"scivideobench/58827/1": ("multiple choice", "D", "jove_58827.mp4", 4)},
    ),
    (
        "videommmu",
        "videommmu_official/videommmu.json",  # {"Perception": {"0": {...}}}
        {
            "videommmu/validation_Accounting_1": ("multiple choice", "C", "Business/validation_Accounting_1.mp4", 4),
            "videommmu/validation_Chemistry_4": ("multiple choice", "B", "Science/validation_Chemistry_4.mp4", 4),
            "videommmu/test_Physics_9": ("numerical", "19.6", "Science/test_Physics_9.mp4", 0),
        },
    ),
    (
        "mvbench",
        "mvbench_video",  # the `video` revision is chosen explicitly in test_mvbench_video_revision
        {
            "mvbench/action_sequence/0": ("multiple choice", "A", "video/star/Charades_v1_480/USNP1.mp4", 4),
            "mvbench/action_sequence/1": ("multiple choice", "B", "video/star/Charades_v1_480/ZC9K6.mp4", 3),
            "mvbench/action_count/0": ("multiple choice", "A", "video/perception/videos/video_10109.mp4", 3),
        },
    ),
]


@pytest.mark.parametrize("name,src,expected", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_adapter_converts_and_loads(name, src, expected, tmp_path):
    records = convert(name, DATA / src)
    assert all(r["benchmark"] == name for r in records)
    loaded = _load(records, tmp_path)
    assert set(loaded) == set(expected)
    for rid, (ptype, answer, video, n_options) in expected.items():
        rec = loaded[rid]
        assert (rec.problem_type, rec.answer, rec.video) == (ptype, answer, video), rid
        assert len(rec.options) == n_options, rid
        # Option lines are in the question shown to the model, lettered A., B., ... in order.
        for i, option in enumerate(rec.options):
            assert option.startswith(f"{chr(ord('A') + i)}. "), option
            assert f"\n{option}" in rec.question, rid
        if not n_options:
            assert "Options:" not in rec.question
        assert "<video>" not in rec.question  # the loader strips the tag the converter put there


def test_numeric_answers_stay_numbers(tmp_path):
    """Numbers are JSON numbers; a float keeps its decimal point (the numerical reward's rule needs it)."""
    vsi = {r["id"]: r for r in convert("vsibench", DATA / "vsibench/test.json")}
    assert vsi["vsibench/0"]["answer"] == 4 and isinstance(vsi["vsibench/0"]["answer"], int)
    assert vsi["vsibench/1"]["answer"] == 2.5
    assert vsi["vsibench/1"]["conversations"][1]["value"] == "<answer>2.5</answer>"
    mmmu = {r["id"]: r for r in convert("videommmu", DATA / "videommmu")}
    assert mmmu["videommmu/test_Math_12"]["answer"] == 3.5
    assert mmmu["videommmu/test_Math_12"]["track"] == "Adaptation"
    assert mmmu["videommmu/validation_Art_Theory_3"]["track"] == "Perception"


def test_benchmark_metadata_is_kept(tmp_path):
    mv = {r["id"]: r for r in convert("mvbench", DATA / "mvbench/json/action_localization.json")}
    rec = mv["mvbench/action_localization/0"]
    assert (rec["start"], rec["end"], rec["task"]) == (12.5, 30.0, "action_localization")
    vm = convert("videomme", DATA / "videomme/test.json")[0]
    assert (vm["duration"], vm["domain"], vm["task_type"]) == ("short", "Knowledge", "Counting Problem")
    loaded = _load([vm], tmp_path)["videomme/001-1"]
    assert loaded.extra["benchmark"] == "videomme" and loaded.extra["duration"] == "short"


def test_videomme_parquet_layout(tmp_path):
    """The published file is parquet (options as a list column): same records as from the JSON rows."""
    import pandas as pd  # in the dev extra: the parquet path must be tested in CI, not skipped

    rows = json.loads((DATA / "videomme/test.json").read_text())
    pd.DataFrame(rows).to_parquet(tmp_path / "test-00000-of-00001.parquet")
    assert convert("videomme", tmp_path / "test-00000-of-00001.parquet") == convert(
        "videomme", DATA / "videomme/test.json"
    )


def test_video_prefix_and_root(tmp_path):
    root = tmp_path / "videos_root"
    (root / "mme").mkdir(parents=True)
    (root / "mme" / "vidAAA111.MP4").write_bytes(b"x")  # the variant spelling lmms-eval also accepts
    recs = convert("videomme", DATA / "videomme/test.json", video_prefix="mme", video_root=root)
    assert [r["video"] for r in recs] == ["mme/vidAAA111.MP4"] * 2
    with pytest.raises(BenchmarkFormatError, match=r"record 'vsibench/0': video .*arkitscenes/41069025.mp4 not found"):
        convert("vsibench", DATA / "vsibench/test.json", video_root=root)
    assert convert("vsibench", DATA / "vsibench/test.json", video_root=root, skip_missing=True) == []


@pytest.mark.parametrize(
    "name,file,message",
    [
        # the answer text is not among the candidates: names the file and the row index
        (
            "mvbench",
            "mvbench_answer_not_a_candidate.json",
            r"mvbench_answer_not_a_candidate\.json\[1\]: answer 'a phone'",
        ),
        # a required field is missing: names the field and lists the fields present
        ("videomme", "videomme_missing_options.json", r"videomme_missing_options\.json\[0\]: missing field 'options'"),
        # a numeric question type whose ground truth is not a number
        (
            "vsibench",
            "vsibench_bad_number.json",
            r"vsibench_bad_number\.json\[0\]: numeric question type 'room_size_estimation'",
        ),
    ],
)
def test_malformed_rows_name_file_and_row(name, file, message):
    with pytest.raises(BenchmarkFormatError, match=message):
        convert(name, DATA / "malformed" / file)


def test_layout_errors(tmp_path):
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"a": 1}))
    with pytest.raises(BenchmarkFormatError, match=r"nested\.json: expected a JSON list"):
        convert("videomme", nested)
    bad = tmp_path / "mmmu.json"
    bad.write_text(json.dumps([{"id": "x1", "question": "q", "answer": "A", "options": ["a", "b"]}]))
    with pytest.raises(BenchmarkFormatError, match=r"mmmu\.json\[0\]: id 'x1' is not '<split>_<Subject>_<n>'"):
        convert("videommmu", bad)
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        convert("nope", bad)
    with pytest.raises(FileNotFoundError):
        convert("mmvu", tmp_path / "missing.json")


@pytest.mark.parametrize(
    "answer,options,letter",
    [
        ("B", ["A. x", "B. y"], "B"),  # bare letter
        ("(b)", ["A. x", "B. y"], "B"),  # lower case in parentheses
        ("B. y", ["A. x", "B. y"], "B"),  # TempCompass: letter and text
        ("y", ["A. x", "B. y"], "B"),  # MVBench: candidate text
        ("Y!", ["A. x", "B. y"], "B"),  # text, case and punctuation ignored
        (3, ["A. 2", "B. 3"], "B"),  # a number is option text, never an index
        ("a", ["A. b", "B. a"], "B"),  # an option that literally reads "a" wins over the letter reading
    ],
)
def test_letter_for_answer(answer, options, letter):
    assert letter_for_answer(answer, options, "row") == letter


@pytest.mark.parametrize(
    "answer,options,message",
    [
        ("C", ["A. x", "B. y"], "answer letter 'C' but the options are AB"),
        ("B. z", ["A. x", "B. y"], "neither an option letter nor one of the options"),  # letter and text disagree
        ("x", ["A. x", "B. x"], "matches several options"),
    ],
)
def test_letter_for_answer_errors(answer, options, message):
    with pytest.raises(BenchmarkFormatError, match=message):
        letter_for_answer(answer, options, "row")


def test_split_question_options():
    stem, opts = split_question_options("What moves?\nThink about it.\nA. the cat\nB. the dog")
    assert stem == "What moves?\nThink about it."
    assert opts == ["A. the cat", "B. the dog"]


def test_every_adapter_has_a_sample():
    assert {c[0] for c in CASES} == set(ADAPTERS)


def test_cli_convert_benchmark(tmp_path, capsys):
    src = tmp_path / "mmvu"
    shutil.copytree(DATA / "mmvu", src)
    out = cli_main(
        [
            "convert-benchmark",
            "--name",
            "mmvu",
            "--src",
            str(src / "validation.json"),
            "--out",
            str(tmp_path / "o.json"),
        ]
    )
    assert out == tmp_path / "o.json"
    printed = capsys.readouterr().out
    assert "wrote 3 mmvu records" in printed and "free-form: 1, multiple choice: 1, numerical: 1" in printed
    assert [r.id for r in load_records(out).records] == ["mmvu/validation_0", "mmvu/validation_1", "mmvu/validation_2"]


# ------------------------------------------------------------------------------ layouts as published


def test_mlvu_official_folder_skips_generation_tasks_and_counts_bad_rows(tmp_path):
    """MLVU's json/ folder: sub-scene and summary files are skipped with a note; rows whose answer matches no
    candidate, several, or is empty are dropped and counted (not the whole file)."""
    skips = Skips()
    recs = convert("mlvu", DATA / "mlvu_official", skips=skips)
    assert [r["id"] for r in recs] == ["mlvu/4_count/0"]
    assert recs[0]["answer"] == "B"
    messages = skips.messages()
    assert any("8_sub_scene.json: generation task" in m for m in messages)
    assert any("9_summary.json: generation task" in m for m in messages)
    assert any(
        m.startswith("dropped 1 row(s): answer matches no option (first: ") and "4_count.json[1]" in m for m in messages
    )
    assert any(m.startswith("dropped 1 row(s): answer matches several options") for m in messages)
    assert any(m.startswith("dropped 1 row(s): empty answer") and "4_count.json[3]" in m for m in messages)
    with pytest.raises(BenchmarkFormatError, match=r"4_count\.json\[1\]: answer 'six' is neither"):
        convert("mlvu", DATA / "mlvu_official", skips=Skips(strict=True))


def test_empty_answer_is_reported_as_empty(tmp_path):
    bad = tmp_path / "bench.json"
    bad.write_text(json.dumps([{"video": "v.mp4", "question": "q?", "candidates": ["a", "b"], "answer": ""}]))
    with pytest.raises(BenchmarkFormatError, match=r"bench\.json\[0\]: answer is empty"):
        convert("mvbench", bad)
    bad.write_text(json.dumps([{"video": "v.mp4", "question": "q?", "candidates": ["a", "b"]}]))
    with pytest.raises(BenchmarkFormatError, match=r"bench\.json\[0\]: missing field 'answer'"):
        convert("mvbench", bad)


def test_videommmu_nested_track_comes_from_the_split():
    recs = {r["id"]: r for r in convert("videommmu", DATA / "videommmu_official/videommmu.json")}
    assert recs["videommmu/validation_Accounting_1"]["track"] == "Perception"
    assert recs["videommmu/test_Physics_9"]["track"] == "Adaptation"


def _lvb_parquet(rows: list[dict], path: Path) -> None:
    """The Hugging Face parquet layout: option0…option4 padded with "N/A" instead of a candidates list."""
    import pandas as pd

    flat = []
    for row in rows:
        row = dict(row)
        cands = row.pop("candidates")
        flat.append(row | {f"option{i}": (cands[i] if i < len(cands) else "N/A") for i in range(5)})
    pd.DataFrame(flat).to_parquet(path)


def test_longvideobench_parquet_layout(tmp_path):
    rows = json.loads((DATA / "longvideobench_download/lvb_val.json").read_text())
    _lvb_parquet(rows, tmp_path / "validation-00000-of-00001.parquet")
    from_parquet = convert("longvideobench", tmp_path / "validation-00000-of-00001.parquet")
    from_json = convert("longvideobench", DATA / "longvideobench_download/lvb_val.json")
    assert [r["options"] for r in from_parquet] == [["A. a pen", "B. a cup", "C. a phone", "D. a book"]]
    for a, b in zip(from_parquet, from_json):
        assert {k: a[k] for k in ("id", "video", "answer", "options")} == {
            k: b[k] for k in ("id", "video", "answer", "options")
        }


def test_longvideobench_download_folder_leaves_out_the_test_files(tmp_path):
    folder = tmp_path / "LongVideoBench"
    shutil.copytree(DATA / "longvideobench_download", folder)
    _lvb_parquet(json.loads((folder / "lvb_val.json").read_text()), folder / "validation-00000-of-00001.parquet")
    test_rows = json.loads((folder / "lvb_test_wo_gt.json").read_text())
    _lvb_parquet(test_rows, folder / "test-00000-of-00001.parquet")
    skips = Skips()
    recs = convert("longvideobench", folder, skips=skips)
    assert [r["id"] for r in recs] == ["longvideobench/abcDEF123_0"]  # once, and no test row
    notes = "\n".join(skips.messages())
    assert "lvb_test_wo_gt.json: test split without answers" in notes
    assert "test-00000-of-00001.parquet: test split without answers" in notes
    assert "validation-00000-of-00001.parquet: same validation rows" in notes
    (folder / "lvb_val.json").unlink()  # the parquet alone is read
    assert [r["id"] for r in convert("longvideobench", folder)] == ["longvideobench/abcDEF123_0"]


def test_mvbench_video_revision(tmp_path):
    """The `video` revision: STAR clips are cut files <id>_<start>_<end>.mp4 under star/Charades_segment/."""
    recs = {r["id"]: r for r in convert("mvbench", DATA / "mvbench_video", revision="video")}
    first = recs["mvbench/action_sequence/0"]
    assert first["video"] == "video/star/Charades_segment/USNP1_1.2999999999999998_15.4.mp4"
    assert first["source_video"] == "USNP1.mp4" and first["revision"] == "video"
    assert recs["mvbench/action_sequence/1"]["video"] == "video/star/Charades_segment/ZC9K6_3.0_11.7.mp4"
    assert recs["mvbench/action_count/0"]["video"] == "video/perception/videos/video_10109.mp4"
    # with the videos at hand the revision is detected, and a cut file written with other digits is found
    root = tmp_path / "MVBench"
    seg = root / "video" / "star" / "Charades_segment"
    seg.mkdir(parents=True)
    (seg / "USNP1_1.3_15.4.mp4").write_bytes(b"x")
    (seg / "ZC9K6_3.0_11.7.mp4").write_bytes(b"x")
    (root / "video" / "perception" / "videos").mkdir(parents=True)
    (root / "video" / "perception" / "videos" / "video_10109.mp4").write_bytes(b"x")
    found = {r["id"]: r["video"] for r in convert("mvbench", DATA / "mvbench_video", video_root=root)}
    assert found["mvbench/action_sequence/0"] == "video/star/Charades_segment/USNP1_1.3_15.4.mp4"
    assert segment_name("USNP1_1.3_15.4.mp4", 9, 9) == "USNP1_1.3_15.4.mp4"  # already a segment


def test_cli_format_error_is_one_line_and_notes_are_counted(tmp_path, capsys):
    from lit_videor2.cli import run

    out = tmp_path / "mlvu.json"
    cli_main(["convert-benchmark", "--name", "mlvu", "--src", str(DATA / "mlvu_official"), "--out", str(out)])
    captured = capsys.readouterr()
    assert "wrote 1 mlvu records" in captured.out
    notes = [ln for ln in captured.err.splitlines() if ln.startswith("convert-benchmark: note: ")]
    assert len(notes) == 5, captured.err
    with pytest.raises(SystemExit) as exc:
        run(
            ["convert-benchmark", "--name", "mlvu", "--src", str(DATA / "mlvu_official"), "--out", str(out), "--strict"]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "Traceback" not in err[0] and "4_count.json[1]: answer 'six'" in err[0]
    with pytest.raises(BenchmarkFormatError, match="options \\['revision'\\] do not apply"):
        cli_main(
            [
                "convert-benchmark",
                "--name",
                "mlvu",
                "--src",
                str(DATA / "mlvu"),
                "--out",
                str(out),
                "--revision",
                "video",
            ]
        )
