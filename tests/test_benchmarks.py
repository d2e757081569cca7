"""Benchmark adapters on small hand-made samples in each public layout (tests/data/benchmarks/).

Every converted file must load through ``load_records``; the checks look at ids, answer letters, problem
types, option lines in the question, video paths and the error messages for malformed rows.
"""

from __future__ import annotations

import json
import re
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
        {"scivideobench/58827/conceptual_reasoning/1": ("multiple choice", "D", "jove_58827.mp4", 4)},
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
        "mvbench_video",  # rows of the `video` revision (pre-cut clips): inferred, folders at the download root
        {
            "mvbench/action_sequence/0": (
                "multiple choice",
                "A",
                "star/Charades_segment/USNP1_1.2999999999999998_15.4.mp4",
                4,
            ),
            "mvbench/action_sequence/1": ("multiple choice", "B", "star/Charades_segment/ZC9K6_3.0_11.7.mp4", 3),
            "mvbench/action_count/0": ("multiple choice", "A", "perception/videos/video_10109.mp4", 3),
        },
    ),
    (
        "scivideobench",
        "scivideobench_twins/scivideobench_1k.jsonl",  # question ids repeated across question types, 10 options
        {
            "scivideobench/65238/conceptual_reasoning/1": ("multiple choice", "A", "jove_65238.mp4", 10),
            "scivideobench/65238/hypothetical_reasoning/1": ("multiple choice", "B", "jove_65238.mp4", 10),
            "scivideobench/65238/quantitative_reasoning/1": ("multiple choice", "C", "jove_65238.mp4", 10),
            "scivideobench/65238/conceptual_reasoning/2": ("multiple choice", "C", "jove_65238.mp4", 10),
            "scivideobench/58827/conceptual_reasoning/1": ("multiple choice", "D", "jove_58827.mp4", 10),
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
            r"vsibench_bad_number\.json\[0\]: field 'ground_truth' 'about twenty' is not a number",
        ),
    ],
)
def test_malformed_rows_name_file_and_row(name, file, message):
    """--strict: the first bad row stops the conversion, naming the file, the row and the field. Without it the
    row is dropped, and listed with the same words."""
    with pytest.raises(BenchmarkFormatError, match=message):
        convert(name, DATA / "malformed" / file, skips=Skips(strict=True))
    skips = Skips()
    convert(name, DATA / "malformed" / file, skips=skips)
    assert len(skips.rows) == 1
    assert any(re.search(message, m) for m in skips.messages() if m.startswith("skipped ")), skips.messages()


def test_layout_errors(tmp_path):
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"a": 1}))
    with pytest.raises(BenchmarkFormatError, match=r"nested\.json: expected a JSON list"):
        convert("videomme", nested)
    bad = tmp_path / "mmmu.json"
    bad.write_text(json.dumps([{"id": "x1", "question": "q", "answer": "A", "options": ["a", "b"]}]))
    with pytest.raises(BenchmarkFormatError, match=r"mmmu\.json\[0\]: field 'id' 'x1' is not '<split>_<Subject>_<n>'"):
        convert("videommmu", bad, skips=Skips(strict=True))
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
    """MLVU's json/ folder: sub-scene and summary files are left out with a note saying why; rows that cannot be
    used (an empty question, as in the published 7_topic_reasoning.json; an answer matching no candidate, several,
    or empty) are dropped, counted and listed, and the rest of the folder converts."""
    skips = Skips()
    recs = convert("mlvu", DATA / "mlvu_official", skips=skips)
    assert [r["id"] for r in recs] == ["mlvu/4_count/0", "mlvu/7_topic_reasoning/0", "mlvu/7_topic_reasoning/2"]
    assert [r["answer"] for r in recs] == ["B", "B", "C"]
    assert recs[1]["video"] == "video/7_topic_reasoning/topic_004.mp4"
    assert (recs[1]["duration"], recs[1]["question_type"], recs[1]["task"]) == (
        496.0,
        "topic_reasoning",
        "7_topic_reasoning",
    )
    messages = skips.messages()
    assert any(
        "8_sub_scene.json: not converted: generation task (sub_scene): its 1 rows have no candidates" in m
        for m in messages
    )
    assert any("9_summary.json: not converted: generation task (summary)" in m for m in messages)
    counts = [m for m in messages if m.startswith("dropped ")]
    assert counts == [
        "dropped 1 row(s): answer matches no option (--strict makes this an error)",
        "dropped 1 row(s): answer matches several options (--strict makes this an error)",
        "dropped 1 row(s): empty answer (--strict makes this an error)",
        "dropped 1 row(s): field 'question' is empty (--strict makes this an error)",
    ]
    listed = [m for m in messages if m.startswith("skipped ")]
    assert [m.split("json/")[1].split(":")[0] for m in listed] == [
        "4_count.json[1]",
        "4_count.json[2]",
        "4_count.json[3]",
        "7_topic_reasoning.json[1]",
    ]
    assert listed[-1].endswith("7_topic_reasoning.json[1]: field 'question' is empty")
    assert skips.summary() == (
        "dropped 4 row(s): answer matches no option: 1, answer matches several options: 1, empty answer: 1, "
        "field 'question' is empty: 1"
    )
    with pytest.raises(BenchmarkFormatError, match=r"4_count\.json\[1\]: answer 'six' is neither"):
        convert("mlvu", DATA / "mlvu_official", skips=Skips(strict=True))
    with pytest.raises(BenchmarkFormatError, match=r"7_topic_reasoning\.json\[1\]: field 'question' is empty$"):
        convert("mlvu", DATA / "mlvu_official/json/7_topic_reasoning.json", skips=Skips(strict=True))


def test_empty_answer_is_reported_as_empty(tmp_path):
    bad = tmp_path / "bench.json"
    bad.write_text(json.dumps([{"video": "v.mp4", "question": "q?", "candidates": ["a", "b"], "answer": ""}]))
    with pytest.raises(BenchmarkFormatError, match=r"bench\.json\[0\]: answer is empty"):
        convert("mvbench", bad, skips=Skips(strict=True))
    bad.write_text(json.dumps([{"video": "v.mp4", "question": "q?", "candidates": ["a", "b"]}]))
    with pytest.raises(BenchmarkFormatError, match=r"bench\.json\[0\]: missing field 'answer'"):
        convert("mvbench", bad, skips=Skips(strict=True))
    bad.write_text(json.dumps([{"video": "v.mp4", "question": "q?", "candidates": ["a", "b"], "answer": None}]))
    with pytest.raises(BenchmarkFormatError, match=r"bench\.json\[0\]: field 'answer' is null"):
        convert("mvbench", bad, skips=Skips(strict=True))


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


def test_mvbench_video_revision(tmp_path, caplog):
    """The `video` revision: its rows name pre-cut clips <id>_<start>_<end>.mp4 and its task folders sit at the
    download root (star/Charades_segment/...), as lmms-eval joins them. Without --revision that is inferred and
    said; --revision main contradicts the rows and is an error naming the row."""
    skips = Skips()
    recs = {r["id"]: r for r in convert("mvbench", DATA / "mvbench_video", skips=skips)}
    first = recs["mvbench/action_sequence/0"]
    assert first["video"] == "star/Charades_segment/USNP1_1.2999999999999998_15.4.mp4"
    assert first["revision"] == "video" and first["source_video"] == "USNP1_1.2999999999999998_15.4.mp4"
    assert (first["start"], first["end"]) == (1.2999999999999998, 15.4)
    (note,) = skips.notes
    assert note.startswith("MVBench revision 'video' inferred: ") and "action_sequence.json[0]" in note
    assert convert("mvbench", DATA / "mvbench_video", revision="video") == list(recs.values())
    with pytest.raises(
        BenchmarkFormatError,
        match=r"action_sequence\.json\[0\]: field 'video' "
        r"'USNP1_1\.2999999999999998_15\.4\.mp4' names a pre-cut clip .* --revision main was given",
    ):
        convert("mvbench", DATA / "mvbench_video", revision="main")
    # --video-prefix still applies in front of the task folders
    prefixed = convert("mvbench", DATA / "mvbench_video/json/action_count.json", revision="video", video_prefix="mv")
    assert prefixed[0]["video"] == "mv/perception/videos/video_10109.mp4"


def test_mvbench_main_json_for_the_video_revision(tmp_path):
    """Rows of the `main` JSON (whole video + start/end) converted for the `video` revision point at the cut file,
    at the download root; with the videos at hand a cut file written with other digits is found, and such a
    --video-root alone says which revision it is."""
    main = convert("mvbench", DATA / "mvbench/json/action_localization.json")
    assert main[0]["video"] == "video/sta/sta_video/sta_0001.mp4" and main[0]["revision"] == "main"
    cut = convert("mvbench", DATA / "mvbench/json/action_localization.json", revision="video")
    assert cut[0]["video"] == "sta/sta_video_segment/sta_0001_12.5_30.0.mp4"
    root = tmp_path / "MVBench"
    (root / "star" / "Charades_segment").mkdir(parents=True)
    (root / "sta" / "sta_video_segment").mkdir(parents=True)
    (root / "sta" / "sta_video_segment" / "sta_0001_12.50_30.mp4").write_bytes(b"x")
    skips = Skips()
    found = convert("mvbench", DATA / "mvbench/json/action_localization.json", video_root=root, skips=skips)
    assert found[0]["video"] == "sta/sta_video_segment/sta_0001_12.50_30.mp4"
    assert skips.notes == [
        f"MVBench revision 'video' inferred: {root / 'star/Charades_segment'} exists (--revision video says so)"
    ]
    assert segment_name("USNP1_1.3_15.4.mp4", 9, 9) == "USNP1_1.3_15.4.mp4"  # already a segment


def _cli(args: list[str]) -> Path:
    return cli_main(["convert-benchmark", *args])


def test_cli_format_error_is_one_line_and_notes_are_counted(tmp_path, capsys):
    from lit_videor2.cli import run

    out = tmp_path / "mlvu.json"
    _cli(["--name", "mlvu", "--src", str(DATA / "mlvu_official"), "--out", str(out)])
    captured = capsys.readouterr()
    assert "wrote 3 mlvu records" in captured.out
    assert captured.out.rstrip().endswith(
        "dropped 4 row(s): answer matches no option: 1, answer matches several "
        "options: 1, empty answer: 1, field 'question' is empty: 1"
    )
    notes = [ln for ln in captured.err.splitlines() if ln.startswith("convert-benchmark: note: ")]
    assert len(notes) == 2 + 4 + 4, captured.err  # 2 files left out; 4 reasons, each with its one row listed
    assert (
        f"convert-benchmark: note: skipped {DATA / 'mlvu_official/json/7_topic_reasoning.json'}[1]: field "
        "'question' is empty" in notes
    )
    with pytest.raises(SystemExit) as exc:
        run(
            ["convert-benchmark", "--name", "mlvu", "--src", str(DATA / "mlvu_official"), "--out", str(out), "--strict"]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "Traceback" not in err[0] and "4_count.json[1]: answer 'six'" in err[0]
    with pytest.raises(BenchmarkFormatError, match="options \\['revision'\\] do not apply"):
        _cli(["--name", "mlvu", "--src", str(DATA / "mlvu"), "--out", str(out), "--revision", "video"])


def test_cli_generation_file_alone_says_why(tmp_path):
    """MLVU's 8_sub_scene.json given alone: no multiple-choice row, and the error says why."""
    src = DATA / "mlvu_official/json/8_sub_scene.json"
    with pytest.raises(BenchmarkFormatError) as exc:
        _cli(["--name", "mlvu", "--src", str(src), "--out", str(tmp_path / "o.json")])
    message = str(exc.value)
    assert message.startswith(
        f"{src}: no records converted: {src}: not converted: generation task (sub_scene): its 1 rows have no candidates"
    )
    assert not (tmp_path / "o.json").exists()


def test_cli_all_rows_dropped_says_why(tmp_path):
    """A file whose every row is unusable stops the command with the reasons and the first row of each."""
    with pytest.raises(
        BenchmarkFormatError,
        match=r"no records converted: dropped 1 row\(s\): missing field "
        r"'options': 1 \(first: .*videomme_missing_options\.json\[0\]: missing field 'options'",
    ):
        _cli(
            [
                "--name",
                "videomme",
                "--src",
                str(DATA / "malformed/videomme_missing_options.json"),
                "--out",
                str(tmp_path / "o.json"),
            ]
        )


def test_cli_mvbench_revision_inferred_and_said(tmp_path, capsys):
    out = _cli(["--name", "mvbench", "--src", str(DATA / "mvbench_video"), "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert "convert-benchmark: note: MVBench revision 'video' inferred: " in err
    videos = [r.video for r in load_records(out).records]
    assert videos[1] == "star/Charades_segment/USNP1_1.2999999999999998_15.4.mp4"
    with pytest.raises(BenchmarkFormatError, match="--revision main was given"):
        _cli(
            [
                "--name",
                "mvbench",
                "--src",
                str(DATA / "mvbench_video"),
                "--out",
                str(tmp_path / "o.json"),
                "--revision",
                "main",
            ]
        )


# ------------------------------------------------------------------------- every converter, the same rules

#: One clean sample per converter as a flat list of rows (file name kept: MVBench and MLVU read the task from it).
FLAT_SAMPLES = {
    "mvbench": "mvbench/json/action_count.json",
    "videomme": "videomme/test.json",
    "tempcompass": "tempcompass/multi-choice_flat.jsonl",
    "videommmu": "videommmu/Perception/test.json",
    "mmvu": "mmvu/validation.json",
    "vsibench": "vsibench/test.json",
    "mlvu": "mlvu/json/1_plotQA.json",
    "longvideobench": "longvideobench/lvb_val.json",
    "videomathqa": "videomathqa/videomathqa_mcq_test.json",
    "minerva": "minerva/minerva.json",
    "scivideobench": "scivideobench_twins/scivideobench_1k.jsonl",
}


def _rows(path: Path) -> list[dict]:
    text = path.read_text()
    return [json.loads(ln) for ln in text.splitlines() if ln.strip()] if path.suffix == ".jsonl" else json.loads(text)


def _write_rows(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text(json.dumps(rows))
    return path


def test_every_layout_has_a_flat_sample():
    assert set(FLAT_SAMPLES) == set(ADAPTERS)


@pytest.mark.parametrize("name", sorted(FLAT_SAMPLES))
def test_every_converter_counts_an_unusable_row(name, tmp_path):
    """An empty question among clean rows, for every converter: dropped, counted and listed without --strict;
    with it, an error naming the file, the row and the field."""
    sample = DATA / FLAT_SAMPLES[name]
    rows = _rows(sample)
    bad = dict(rows[0], question="")
    src = _write_rows([*rows, bad], tmp_path / sample.name)
    clean = convert(name, sample)
    skips = Skips()
    recs = convert(name, src, skips=skips)
    assert len(recs) == len(clean), "the clean rows all convert"
    assert skips.summary() == "dropped 1 row(s): field 'question' is empty: 1"
    assert any(m.startswith(f"skipped {src}") and m.endswith("field 'question' is empty") for m in skips.messages())
    with pytest.raises(
        BenchmarkFormatError,
        match=rf"{re.escape(src.name)}(\[{len(rows)}\]|:{len(rows) + 1}): "
        r"field 'question' is empty",
    ):
        convert(name, src, skips=Skips(strict=True))


@pytest.mark.parametrize("name", sorted(FLAT_SAMPLES))
def test_every_converter_keeps_unused_fields(name, tmp_path):
    """Fields a converter does not use are metadata, never a reason to fail: odd types included, and names the
    record or the loader already use kept as source_<name>."""
    sample = DATA / FLAT_SAMPLES[name]
    rows = _rows(sample)
    extra = {
        "annotator_note": {"checked": True, "by": ["x", "y"]},
        "rank": 3,
        "empty_field": None,
        "temporal_grounding": "n/a",
        "conversations": 7,
    }
    src = _write_rows([dict(r, **extra) for r in rows], tmp_path / sample.name)
    recs = convert(name, src, skips=Skips(strict=True))
    assert len(recs) == len(rows)
    for rec in recs:
        assert rec["annotator_note"] == {"checked": True, "by": ["x", "y"]} and rec["rank"] == 3
        assert "empty_field" not in rec
        assert (rec["source_temporal_grounding"], rec["source_conversations"]) == ("n/a", 7)
    _load(recs, tmp_path)


@pytest.mark.parametrize("name", sorted(FLAT_SAMPLES))
def test_every_converter_ids_are_unique_and_stable(name, tmp_path):
    """A row repeated word for word keeps its place with the id suffixed '#2' (the benchmark's scorer counts every
    row), said in a note; converting twice gives the same ids."""
    sample = DATA / FLAT_SAMPLES[name]
    rows = _rows(sample)
    src = _write_rows([*rows, rows[0]], tmp_path / sample.name)
    skips = Skips()
    recs = convert(name, src, skips=skips)
    ids = [r["id"] for r in recs]
    assert len(ids) == len(set(ids)) == len(rows) + 1
    # ids numbered by position (row index; per video and dimension; per question) give the repeat its own number
    if name not in ("mvbench", "mlvu", "tempcompass", "videomathqa"):
        assert ids[-1] == ids[0] + "#2"
        (note,) = [m for m in skips.messages() if "repeat an earlier row" in m]
        assert note.startswith("1 row(s) repeat an earlier row (same id, video, question, options and answer): kept")
    assert [r["id"] for r in convert(name, src)] == ids


def test_scivideobench_twin_question_ids(tmp_path):
    """The published file reuses (video_id, question_id) across question types: every row comes out, the type
    in its id; category and video_duration are kept; 10 options A-J."""
    skips = Skips(strict=True)
    recs = convert("scivideobench", DATA / "scivideobench_twins/scivideobench_1k.jsonl", skips=skips)
    assert len(recs) == 5 and not skips.repeats
    twin = recs[1]
    assert twin["id"] == "scivideobench/65238/hypothetical_reasoning/1"
    assert (twin["question_id"], twin["video_id"], twin["question_type"]) == ("1", "65238", "Hypothetical Reasoning")
    assert (twin["category"], twin["video_duration"], twin["discipline"]) == ("Biology", 412.6, "Biology")
    assert twin["options"][-1] == "J. The enzyme would be inhibited"
    assert "timestamp_breakdown" not in twin
    loaded = _load(recs, tmp_path)
    assert len(loaded) == 5


def test_repeated_ids_with_other_content_are_told_apart(tmp_path):
    """Two different rows under one source id: both kept, the second suffixed, and the note says they differ."""
    rows = _rows(DATA / "videomme/test.json")
    src = _write_rows([rows[0], dict(rows[1], question_id=rows[0]["question_id"])], tmp_path / "test.json")
    skips = Skips()
    recs = convert("videomme", src, skips=skips)
    assert [r["id"] for r in recs] == ["videomme/001-1", "videomme/001-1#2"]
    (note,) = skips.messages()
    assert "have the id of an earlier row with another question or answer" in note and "test.json[1]" in note
