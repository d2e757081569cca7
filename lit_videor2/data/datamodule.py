"""VideoDataModule: one data pipeline for SFT, GRPO and evaluation."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from torch.utils.data import DataLoader

from lit_videor2.data.benchmark import Benchmark
from lit_videor2.data.collate import DEFAULT_SYSTEM_PROMPT, VideoCollator
from lit_videor2.data.dataset import ConcatVideoDataset, MixedSamplingDataset, VideoDataset
from lit_videor2.data.decoding import DEFAULT_BACKEND, DEFAULT_DECODE_TIME_LIMIT, BackendName
from lit_videor2.data.frames import FrameLoader, Overlay
from lit_videor2.data.records import REASONING_INSTRUCTION, VideoRecord
from lit_videor2.data.sampler import ResumableSampler, batches_done_equivalent, loader_batches
from lit_videor2.data.sampling import FrameSampling
from lit_videor2.data.schema import OnError, RecordError, load_records
from lit_videor2.data.workers import ignore_preemption_signals
from lit_videor2.models.hub import load_processor

log = logging.getLogger(__name__)

Split = Literal["train", "val", "test", "predict"]


class VideoDataModule(L.LightningDataModule):
    """Annotation files + a video root -> batches for SFT (``mode='sft'``) or GRPO/evaluation (``mode='prompt'``).

    Reads JSON/JSONL in the Video-R2 or Video-R1 schema (:mod:`lit_videor2.data.schema`), samples frames by
    fps with frame and pixel bounds (:class:`FrameSampling`), decodes the frames a player shows at the sampled times
    in DataLoader workers (PyAV by default, see :mod:`lit_videor2.data.decoding`), optionally burns in time/subtitles and caches decoded frames on disk, and collates with
    the model's Hugging Face processor (:class:`VideoCollator`).
    """

    def __init__(
        self,
        processor: str | None = None,
        train_file: str | None = None,
        val_file: str | None = None,
        test_file: str | None = None,
        predict_file: str | None = None,
        video_root: str | None = None,
        mode: Literal["sft", "prompt"] = "sft",
        batch_size: int = 1,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        sampling: FrameSampling = FrameSampling(),
        overlay: Overlay = Overlay(),
        backend: BackendName = DEFAULT_BACKEND,
        fallback_backend: BackendName | None = None,
        decode_time_limit: float | None = DEFAULT_DECODE_TIME_LIMIT,
        cache_dir: str | None = None,
        on_error: OnError = "raise",
        max_length: int = 16384,
        max_prompt_length: int = 16384,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        instruction: str | None = REASONING_INSTRUCTION,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        benchmarks: list[Benchmark] | None = None,
        train_sampling: list[FrameSampling] | None = None,
        val_benchmarks: list[Benchmark] | None = None,
    ) -> None:
        """
        Args:
            processor: Model folder or hub id whose processor (tokenizer + video processor) to use. Default: the
                model path of the LightningModule's policy (``model.policy.path``), so it is given once.
            train_file: Training annotations (JSON list or JSONL).
            val_file: Validation annotations.
            test_file: Test annotations.
            predict_file: Prediction annotations.
            video_root: Folder that record video paths are relative to (default: the annotation file's folder).
            mode: ``sft`` (prompt + target with labels) or ``prompt`` (prompt only, for GRPO and evaluation).
                Validation/test batches always carry the prompt too.
            batch_size: Training batch size per process (prompts per step in GRPO).
            eval_batch_size: Validation/test/predict batch size (default: ``batch_size``).
            num_workers: DataLoader worker processes (decoding runs there).
            sampling: Frame rate, frame-count and per-frame pixel bounds.
            overlay: Optional time/subtitle burn-in, the same for every stage.
            backend: Video decoder: ``pyav`` (default; accurate on every file kind tested), ``torchcodec`` (needs the
                system FFmpeg libraries; checked frame by frame) or ``decord`` (fast, wrong on some real files:
                ``docs/data.md``).
            fallback_backend: Decoder tried when ``backend`` is missing or fails on a file (None: no fallback).
            decode_time_limit: Seconds one sample's video decode may take (default 120). Decoding runs in a child
                process of the worker, killed past the limit even when the decoder is stuck in native code; the sample
                then follows ``on_error`` (an error naming the file, or a counted, logged skip). None: decode in the
                worker itself, without a limit. Why 120 s: ``docs/data.md``, "Decode time limit".
            cache_dir: Folder for an on-disk cache of decoded, resized frames and of the processor's video outputs
                for them (normalised patches, grid, placeholder text; under ``processor/``). None: no cache.
            on_error: ``raise`` on a bad record/video (the error names file and record), or ``skip`` it (counted
                and logged as ``data/skipped``).
            max_length: SFT: longest prompt + target in tokens (the target's end is cut, never the prompt).
            max_prompt_length: Longest prompt in tokens, video included (never truncated: error or skip).
            system_prompt: System message (None: none).
            instruction: Text appended to every question (the reference's think/answer instruction).
            shuffle: Shuffle training data (seeded per epoch).
            seed: Shuffle seed.
            drop_last: Drop the last incomplete training batch.
            benchmarks: Test benchmarks, one test dataloader each (in this order; replaces ``test_file``). Each has
                its own annotation file, video root, table group and frame sampling; its records carry the columns
                ``benchmark`` and ``group``. A module with ``finished_test_ids(benchmark) -> set[str]`` (the
                evaluation module: resume) has those records left out before the dataset is built.
            train_sampling: Frame settings of the training records, one per record (None: ``sampling`` for all).
                With several, record ``i`` of the training file takes entry ``k`` of a seeded (``seed``) balanced
                assignment, the same in every epoch and on any number of ranks, so a GRPO batch mixes frame layouts
                as real videos of different lengths do (e.g. 2 fps/8 frames and 4 fps/16 frames).
            val_benchmarks: More validation sets, validated after ``val_file`` in the same loop, each with its own
                file and frame settings (without a ``file``: ``val_file`` again, e.g. at another frame rate). Their records carry the
                column ``benchmark``; generation-based validation logs each as ``val/<name>/<metric>`` beside the
                ``val/<metric>`` of ``val_file``.
        """
        super().__init__()
        self.save_hyperparameters()
        self.processor_path = processor
        self.files: dict[Split, str | None] = {
            "train": train_file,
            "val": val_file,
            "test": test_file,
            "predict": predict_file,
        }
        self.video_root = video_root
        self.mode = mode
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.sampling = sampling
        self.overlay = overlay
        self.backend = backend
        self.fallback_backend = fallback_backend
        if decode_time_limit is not None and not decode_time_limit > 0:
            raise ValueError(f"VideoDataModule: decode_time_limit must be > 0 seconds or None, got {decode_time_limit}")
        self.decode_time_limit = decode_time_limit
        self.cache_dir = cache_dir
        self.on_error = on_error
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length
        self.system_prompt = system_prompt
        self.instruction = instruction
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.benchmarks = list(benchmarks) if benchmarks else None
        self.train_sampling = list(train_sampling) if train_sampling else None
        self.val_benchmarks = list(val_benchmarks) if val_benchmarks else []
        self.test_datasets: list[VideoDataset] | None = None
        self.datasets: dict[Split, VideoDataset] = {}
        self.skipped_records: dict[Split, int] = {}
        self.skipped_details: dict[str, list[str]] = {}
        """Test benchmark (or ``"test"``) -> reasons of the records skipped while reading its file."""
        self._train_sampler: ResumableSampler | None = None
        self._resume: dict[str, int] | None = None
        self._seen = {"epoch": 0, "start": 0, "batches": 0}  # data position: see state_dict

    # -- building blocks -------------------------------------------------------------------------------

    @cached_property
    def processor(self) -> Any:
        path = self.processor_path
        if path is None:
            module = getattr(getattr(self, "trainer", None), "lightning_module", None)
            path = getattr(getattr(module, "policy", None), "path", None)
        if path is None:
            raise ValueError(
                "VideoDataModule: set `data.processor` (a model folder or hub id) or use a module with a policy"
            )
        return load_processor(path)

    @cached_property
    def frame_loader(self) -> FrameLoader:
        return self.make_frame_loader(self.sampling)

    def make_frame_loader(self, sampling: FrameSampling) -> FrameLoader:
        vp = getattr(self.processor, "video_processor", None)
        factor = int(getattr(vp, "patch_size", 14)) * int(getattr(vp, "merge_size", 2))
        temporal = int(getattr(vp, "temporal_patch_size", 2))
        return FrameLoader(
            sampling,
            size_factor=factor,
            temporal_patch=temporal,
            backend=self.backend,
            fallback=self.fallback_backend,
            overlay=self.overlay,
            cache_dir=self.cache_dir,
            time_limit=self.decode_time_limit,
        )

    def collator(self, mode: Literal["sft", "prompt"]) -> VideoCollator:
        return VideoCollator(
            self.processor,
            mode,
            system_prompt=self.system_prompt,
            instruction=self.instruction,
            max_length=self.max_length,
            max_prompt_length=self.max_prompt_length,
            on_error=self.on_error,
            cache_dir=self.cache_dir,
        )

    def prompt_batch(self, records: list[VideoRecord], video_root: str | Path = ".") -> dict[str, Any]:
        """One prompt batch of ``records``, built as the prompt dataloaders build theirs: :attr:`frame_loader`
        (``sampling``, backend, overlay, cache) and the ``prompt`` collator (system prompt, instruction, limits).
        Video paths are relative to ``video_root`` (this module's, else the argument). What ``ask`` runs."""
        dataset = VideoDataset(records, self.video_root or video_root, self.frame_loader, self.on_error)
        return self.collator("prompt")([dataset[i] for i in range(len(dataset))])

    def build_dataset(self, split: Split) -> VideoDataset:
        file = self.files[split]
        if file is None:
            raise ValueError(f"VideoDataModule: no {split}_file configured")
        report = load_records(file, self.on_error)
        self.skipped_records[split] = len(report.skipped)
        if split == "test":
            self.skipped_details["test"] = list(report.skipped)
        if not report.records:
            first = f"; first: {report.skipped[0]}" if report.skipped else ""
            raise RecordError(f"{file}: no usable records ({len(report.skipped)} skipped{first})")
        root = self.video_root or str(Path(file).parent)
        if split == "train" and self.train_sampling and len(self.train_sampling) > 1:
            parts = [
                VideoDataset(report.records, root, self.make_frame_loader(s), self.on_error)
                for s in self.train_sampling
            ]
            return MixedSamplingDataset(parts, seed=self.seed)
        if split == "train" and self.train_sampling:
            return VideoDataset(report.records, root, self.make_frame_loader(self.train_sampling[0]), self.on_error)
        if split == "val" and self.val_benchmarks:
            own = VideoDataset(report.records, root, self.frame_loader, self.on_error)
            extra = [
                self.build_benchmark_dataset(b if b.file else replace(b, file=self.files["val"]), skip_finished=False)
                for b in self.val_benchmarks
            ]
            return ConcatVideoDataset([own, *extra])
        return VideoDataset(report.records, root, self.frame_loader, self.on_error)

    @property
    def val_set_names(self) -> list[str]:
        """Names of the extra validation sets (``val_benchmarks``), logged as ``val/<name>/<metric>``."""
        return [b.name for b in self.val_benchmarks]

    def setup(self, stage: str | None = None) -> None:
        wanted: dict[str | None, tuple[Split, ...]] = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("predict",),
            None: ("train", "val", "test", "predict"),
        }
        for split in wanted.get(stage, ()):
            if split == "test" and self.benchmarks:
                if self.test_datasets is None:
                    self.test_datasets = [self.build_benchmark_dataset(b) for b in self.benchmarks]
            elif self.files[split] and split not in self.datasets:
                self.datasets[split] = self.build_dataset(split)

    def build_benchmark_dataset(self, benchmark: Benchmark, skip_finished: bool = True) -> VideoDataset:
        """Records of one benchmark, tagged with ``benchmark``/``group``, minus those the module has finished
        (``skip_finished``: test resume; validation sets keep every record)."""
        if not benchmark.file:
            raise RecordError(f"benchmark {benchmark.name!r}: no annotation file (set its 'file')")
        report = load_records(benchmark.file, self.on_error)
        self.skipped_details[benchmark.name] = list(report.skipped)
        if not report.records:
            first = f"; first: {report.skipped[0]}" if report.skipped else ""
            raise RecordError(
                f"benchmark {benchmark.name!r}: {benchmark.file}: no usable records ({len(report.skipped)} skipped{first})"
            )
        module = getattr(getattr(self, "trainer", None), "lightning_module", None)
        finished = getattr(module, "finished_test_ids", None) if skip_finished else None
        done = finished(benchmark.name) if finished is not None else set()
        records = [r for r in report.records if r.id not in done]
        for r in records:
            r.extra.update(benchmark=benchmark.name, group=benchmark.group)
        if done:
            log.info(
                "benchmark %s: %d of %d records already evaluated",
                benchmark.name,
                len(report.records) - len(records),
                len(report.records),
            )
        root = benchmark.video_root or self.video_root or str(Path(benchmark.file).parent)
        loader = self.frame_loader if benchmark.sampling is None else self.make_frame_loader(benchmark.sampling)
        return VideoDataset(records, root, loader, self.on_error)

    # -- loaders ---------------------------------------------------------------------------------------

    def _loader(self, split: Split, mode: Literal["sft", "prompt"], batch_size: int, sampler=None) -> DataLoader:
        if split not in self.datasets:
            self.setup(None)
        return DataLoader(
            self.datasets[split],
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=self.collator(mode),
            persistent_workers=self.num_workers > 0,
            worker_init_fn=ignore_preemption_signals,  # a signal to the process group stops the run, not a worker
            drop_last=(split == "train" and self.drop_last),
            # Exact resume: a loader's own generator draws the workers' base seed, so starting an epoch never
            # consumes the global torch RNG (else a run resumed at an epoch boundary would restore the RNG after
            # the draw that the uninterrupted run made before its next step). Decoding uses no randomness.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _world(self) -> tuple[int, int]:
        """Data-parallel (replicas, rank): the strategy's sampler settings (ModelParallelStrategy: the data-parallel
        mesh dimension, so tensor-parallel ranks get the same data), else world size and global rank."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 0
        kw = getattr(trainer.strategy, "distributed_sampler_kwargs", None) or {}
        return int(kw.get("num_replicas", trainer.world_size)), int(kw.get("rank", trainer.global_rank))

    def train_dataloader(self) -> DataLoader:
        if "train" not in self.datasets:
            self.setup("fit")
        world, rank = self._world()
        sampler = ResumableSampler(
            self.datasets["train"],
            num_replicas=world,
            rank=rank,
            shuffle=self.shuffle,
            seed=self.seed,
            drop_last=self.drop_last,
        )
        if self._resume is not None:
            epoch, start = self._resume["epoch"], self._resume["samples"]
            # Set the epoch now: worker processes prefetch indices when Lightning creates the resumed iterator,
            # which it does before its own ``set_epoch`` (and it reuses that iterator for the resumed epoch).
            sampler.set_epoch(epoch)
            sampler.resume(epoch, start)
            if loader_batches(len(sampler.remaining()) // world, self.batch_size, self.drop_last) == 0:
                epoch, start = epoch + 1, 0  # the checkpoint closed its epoch: the run goes on with the next one
                sampler.set_epoch(epoch)
            self._seen = {"epoch": epoch, "start": start, "batches": 0}
            self._resume = None
        self._train_sampler = sampler
        return self._loader("train", self.mode, self.batch_size, sampler)

    def _eval_sampler(self, split: Split):
        world, rank = self._world()
        if world == 1:
            return None
        return ResumableSampler(self.datasets[split], num_replicas=world, rank=rank, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        # Validation keeps the SFT targets when training SFT (validation loss) and always carries the prompt.
        if self.files["val"] is None:
            return []  # no validation set: Lightning skips the loop
        self.setup("validate")
        return self._loader("val", self.mode, self.eval_batch_size, self._eval_sampler("val"))

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        self.setup("test")
        if self.benchmarks:
            return [self._benchmark_loader(ds) for ds in self.test_datasets]
        return self._loader("test", "prompt", self.eval_batch_size, self._eval_sampler("test"))

    def _benchmark_loader(self, dataset: VideoDataset) -> DataLoader:
        world, rank = self._world()
        sampler = None if world == 1 else ResumableSampler(dataset, num_replicas=world, rank=rank, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=self.collator("prompt"),
            persistent_workers=self.num_workers > 0 and len(dataset) > 0,
            worker_init_fn=ignore_preemption_signals,
        )

    def predict_dataloader(self) -> DataLoader:
        self.setup("predict")
        return self._loader("predict", "prompt", self.eval_batch_size, self._eval_sampler("predict"))

    # -- exact resume ------------------------------------------------------------------------------------

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.training:
            if self._seen["epoch"] != trainer.current_epoch:
                self._seen = {"epoch": trainer.current_epoch, "start": 0, "batches": 0}
            self._seen["batches"] += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Data position: the epoch, and ``samples``, the positions of its order the ranks consumed together.

        Every rank takes ``batch_size`` positions per batch, dealt round-robin, so after ``b`` batches since the
        epoch (or its resume) started at ``start``, the first ``start + b * batch_size * ranks`` positions are
        consumed on every rank alike: a number that means the same at any world size (``data/sampler.py``).
        """
        world, _ = self._world()
        seen = self._seen
        samples = seen["start"] + seen["batches"] * self.batch_size * world
        return {"epoch": seen["epoch"], "samples": samples, "world_size": world}

    def _saved_samples(self, state_dict: dict[str, Any]) -> int:
        if "samples" in state_dict:
            return int(state_dict["samples"])
        # Checkpoints before the position was counted in samples held this rank's batches (same world size assumed).
        return int(state_dict["batches"]) * self.batch_size * self._world()[0]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        epoch, samples = int(state_dict["epoch"]), self._saved_samples(state_dict)
        self._seen = {"epoch": epoch, "start": samples, "batches": 0}
        self._resume = {"epoch": epoch, "samples": samples}

    def rebase_batch_progress(self, checkpoint: dict[str, Any]) -> None:
        """Set the checkpoint's in-epoch batch counters (Lightning's fit loop) to this world size's equivalent.

        Lightning counts batches of the epoch and ends it when the count reaches the epoch's batch count at this
        world size. Resumed on another number of ranks, the batches already taken are those that leave exactly the
        unseen samples (:func:`~lit_videor2.data.sampler.batches_done_equivalent`); unchanged on the same world size.
        Called by the module's ``on_load_checkpoint``, before Lightning restores its loops.
        """
        state = checkpoint.get(type(self).__qualname__)
        progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress")
        if state is None or progress is None or "train" not in self.datasets:
            return
        world, _ = self._world()
        n = len(self.datasets["train"])
        done = batches_done_equivalent(n, self._saved_samples(state), world, self.batch_size, self.drop_last)
        shift = done - int(progress["current"]["ready"])
        if shift:
            log.info("resume on %d ranks: the epoch's batch counter moves from %d to %d", world, done - shift, done)
            progress["current"] = {k: int(v) + shift for k, v in progress["current"].items()}
