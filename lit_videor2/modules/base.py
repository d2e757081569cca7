"""What SFT and GRPO share: the policy (built in ``configure_model``), optimizer and schedule, generation-based
validation, RNG state in checkpoints, and the processor. Stage modules subclass :class:`PolicyModule`."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.cli import OptimizerCallable

from lit_videor2.distributed.loading import load_policy
from lit_videor2.distributed.sharding import shard_policy
from lit_videor2.evaluation.judging import judge_rows
from lit_videor2.evaluation.predictions import batch_rows
from lit_videor2.judges import RuleBasedJudge
from lit_videor2.metrics import PredictionMetrics
from lit_videor2.models.hub import load_processor
from lit_videor2.models.policy import PolicySpec, check_processor_matches
from lit_videor2.modules.optim import WarmupCosine, default_optimizer, param_groups
from lit_videor2.modules.resume import install_resume_anywhere
from lit_videor2.rollout.decoding import stop_token_ids
from lit_videor2.rollout.engine import GenerationSettings, generate_completions

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN/inf loss or gradient (``on_nonfinite='stop'``); a checkpoint was written first."""


@dataclass
class GenerationEval(GenerationSettings):
    """Generation on validation prompts (greedy by default; the settings of :class:`GenerationSettings`), scored by
    the rewards and diagnostics."""

    max_batches: int | None = None
    """Generate on at most this many validation batches per validation run (None: all)."""
    temporal_reward: bool = False
    """Also score the Temporal Alignment Reward (loads the sentence embedder)."""


def collect_rng_states() -> dict[str, Any]:
    """RNG states in types ``torch.load(weights_only=True)`` accepts (the default when Lightning resumes)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, cached))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class PolicyModule(L.LightningModule):
    """Base LightningModule around a :class:`PolicySpec`; nothing heavy happens in ``__init__``."""

    def __init__(
        self,
        policy: PolicySpec,
        optimizer: OptimizerCallable = default_optimizer,
        scheduler: WarmupCosine | None = None,
        generation_eval: GenerationEval | None = None,
    ) -> None:
        """
        Args:
            policy: Model to load, dtype, attention, freezing and LoRA.
            optimizer: Optimizer factory (YAML ``class_path``/``init_args``; default AdamW lr 1e-5, wd 0.1).
            scheduler: Learning-rate schedule over the run's optimizer steps (default: none, constant lr).
            generation_eval: Generation on validation batches (explicit decoding settings, greedy by default),
                scored by format, accuracy, TAC (and TAR).
        """
        super().__init__()
        self.save_hyperparameters()
        self.policy = policy
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.generation_eval = generation_eval
        self.model: torch.nn.Module | None = None
        self._pending_rng: dict[str, Any] | None = None
        self.skipped_samples = 0

    # -- model -----------------------------------------------------------------------------------------

    def configure_model(self) -> None:
        """Load (and, on a device mesh, shard) the policy. Idempotent."""
        if self.model is not None:
            return
        self.model = load_policy(self.policy)
        self.model.train()  # from_pretrained returns eval mode; Lightning keeps modes as it finds them
        if self.device_mesh is not None:
            shard_policy(self.model, self.device_mesh)

    def _check_data_processor(self) -> None:
        """The data module's processor must belong to this model (token ids, patch sizes, vocabulary)."""
        dm = getattr(self.trainer, "datamodule", None)
        processor = getattr(dm, "processor", None) if dm is not None else None
        if processor is not None and self.model is not None:
            check_processor_matches(
                self.model,
                processor,
                processor_path=f"data.processor ({getattr(dm, 'processor_path', None) or self.policy.path})",
            )

    def sharded_models(self) -> list[torch.nn.Module]:
        """The models this module shards (GRPO adds its reference copy)."""
        return [self.model]

    def init_fsdp_roots(self) -> None:
        """FSDP2 picks a model's root at its first forward. Generation and the rollout call the vision tower and
        the rope helpers directly, so before any of them (validation at step 0 included) every rank runs one cheap
        text-only forward through each sharded model (once per process)."""
        if self.device_mesh is None or self.__dict__.get("_fsdp_roots_ready"):
            return
        ids = torch.tensor([[stop_token_ids(self.tokenizer)[0]]], device=self.device)  # [1, 1], a text token
        with torch.no_grad():
            for model in self.sharded_models():
                model(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    mm_token_type_ids=torch.zeros_like(ids),
                    use_cache=False,
                )
        self._fsdp_roots_ready = True

    def setup(self, stage: str) -> None:
        install_resume_anywhere(self.trainer.strategy)  # checkpoints of any world size (modules/resume.py)

    def on_fit_start(self) -> None:
        self._check_data_processor()
        self.init_fsdp_roots()
        dm = getattr(self.trainer, "datamodule", None)  # records skipped while reading the annotation files
        self.skipped_samples = int(getattr(dm, "skipped_records", {}).get("train", 0))

    def on_test_start(self) -> None:
        self._check_data_processor()
        self.init_fsdp_roots()

    @cached_property
    def processor(self) -> Any:
        return load_processor(self.policy.path)

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    # -- optimisation ----------------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(param_groups(self.model))
        if self.scheduler_factory is None:
            return optimizer
        total = self.total_optimizer_steps()
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer, total), "interval": "step"},
        }

    def total_optimizer_steps(self) -> int:
        """Optimizer steps of the run, which the learning-rate schedule spans.

        Lightning's estimate: batches / ``accumulate_grad_batches`` per epoch (rounded up: Lightning steps on an
        epoch's last partial accumulation) times the epochs, capped by ``max_steps`` (which counts optimizer steps).
        Modules with manual optimisation that step a different number of times per batch override this.
        """
        return int(self.trainer.estimated_stepping_batches)

    def any_rank(self, flag: bool) -> bool:
        """``flag`` or-ed over ranks (one all-reduce when distributed): decisions every rank must take together."""
        if self.trainer.world_size == 1:
            return bool(flag)
        value = torch.tensor(float(flag), device=self.device)
        return float(self.trainer.strategy.reduce(value, reduce_op="max")) > 0

    def collective_batch(self, batch: dict[str, Any], stage: str) -> tuple[dict[str, Any] | None, bool]:
        """The batch every rank can run this step, so all ranks make the same forwards and collectives.

        Under FSDP every forward all-gathers weights and under DDP every backward all-reduces gradients: a rank
        whose batch is empty (all its records skipped, ``data.on_error: skip``) must not simply return. It replays
        its last non-empty batch of ``stage`` as a *dummy* (the caller gives it zero weight and discards its
        outputs); if some rank has nothing to replay yet, every rank skips this step together.

        Returns:
            ``(batch, is_dummy)`` to run, or ``(None, False)`` when this step is skipped on every rank.
        """
        has = bool(batch.get("batch_size"))
        replay = self.__dict__.setdefault("_replay_batches", {})
        if has:
            replay[stage] = batch
        if self.trainer.world_size == 1:
            return (batch, False) if has else (None, False)
        if self.any_rank(not has and stage not in replay):  # a rank has nothing to run
            log.warning("%s step skipped on every rank: a rank's batch is empty and it has none to replay", stage)
            return None, False
        return (batch, False) if has else (replay[stage], True)

    def grad_norm(self) -> torch.Tensor:
        """Total L2 norm of the gradients (sharded gradients reduced to the full norm)."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if not grads:
            return torch.zeros(())
        norm = torch.nn.utils.get_total_norm(grads)
        return norm.full_tensor() if hasattr(norm, "full_tensor") else norm

    def log_skipped(self, batch: dict[str, Any]) -> None:
        """Log ``data/skipped``: records this rank skipped so far (``data.on_error: skip``), summed over ranks."""
        self.skipped_samples += int(batch.get("num_skipped", 0))
        self.log("data/skipped", float(self.skipped_samples), reduce_fx="sum", sync_dist=True)

    def skip_or_stop_nonfinite(self, what: str, value: torch.Tensor | float, hint: str) -> None:
        """A NaN/inf ``what`` (loss, gradient norm): count the skipped update (``train/nonfinite_steps``), or, with
        ``on_nonfinite='stop'``, write ``nonfinite.ckpt`` (never over the last good checkpoint) and raise
        :class:`NonFiniteLossError`. ``hint`` says what the user can change."""
        self.nonfinite_steps = getattr(self, "nonfinite_steps", 0) + 1
        self.log("train/nonfinite_steps", float(self.nonfinite_steps))
        if getattr(self, "on_nonfinite", "skip") == "stop":
            path = Path(self.trainer.default_root_dir) / "nonfinite.ckpt"
            self.trainer.save_checkpoint(path)
            raise NonFiniteLossError(
                f"{what} is {float(value)} at global step {self.global_step}; the update was not applied and a "
                f"checkpoint was written to {path}. {hint}"
            )
        log.warning(
            "non-finite %s %s at step %d: update skipped (%d so far)",
            what,
            float(value),
            self.global_step,
            self.nonfinite_steps,
        )

    # -- checkpoints: RNG --------------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = collect_rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Restored at the first training batch, after the data loaders have drawn their worker seeds, so the
        # RNG stream continues exactly where the interrupted run left it.
        self._pending_rng = checkpoint.get("rng_states")
        rebase = getattr(getattr(self.trainer, "datamodule", None), "rebase_batch_progress", None)
        if rebase is not None:  # the epoch's batch count at this run's world size (the data position is in samples)
            rebase(checkpoint)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._pending_rng is not None:
            restore_rng_states(self._pending_rng)
            self._pending_rng = None

    # -- generation-based validation ---------------------------------------------------------------------

    def generation_rows(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """Completions for a batch's prompts (the rollout engine, ``generation_eval``'s settings), as predictions
        rows judged exactly as ``lit_videor2 test`` judges them (:func:`~lit_videor2.evaluation.judge_rows`, the
        rule-based judge)."""
        cfg = self.generation_eval
        out = generate_completions(
            self.model,
            self.tokenizer,
            batch,
            cfg,
            synced=self.trainer.world_size > 1,
            gather_for_generation=self.policy.gather_for_generation,
        )
        rows = batch_rows(batch["columns"], out.texts, out.lengths)
        return judge_rows(rows, RuleBasedJudge(), temporal=cfg.temporal_reward)

    def maybe_score_generation(self, batch: dict[str, Any], batch_idx: int, *, record: bool = True) -> None:
        """Generate and judge on a validation batch when ``generation_eval`` asks for it; ``record=False`` runs
        the same forwards (a replayed dummy batch) and discards the judgments."""
        cfg = self.generation_eval
        if (
            cfg is None
            or "prompt_input_ids" not in batch
            or (cfg.max_batches is not None and batch_idx >= cfg.max_batches)
        ):
            return
        rows = self.generation_rows(batch)
        if record:
            extra = self.__dict__.get("_val_sets", {})  # val/<name>/*: rows of the data module's extra validation sets
            self._val_metrics.update([r for r in rows if r.get("benchmark") not in extra])
            for name, metrics in extra.items():
                metrics.update([r for r in rows if r.get("benchmark") == name])

    def on_validation_epoch_start(self) -> None:
        # Not a registered submodule: the states stay out of checkpoints and sharding; summed over ranks on compute.
        self.__dict__["_val_metrics"] = PredictionMetrics().to(self.device)
        names = getattr(getattr(self.trainer, "datamodule", None), "val_set_names", None) or []
        self.__dict__["_val_sets"] = {name: PredictionMetrics().to(self.device) for name in names}  # same on all ranks
        if self.generation_eval is not None and not self.__dict__.get("_generation_logged"):
            log.info("validation generation settings: %s", self.generation_eval)  # also in hparams.yaml
            self._generation_logged = True

    def on_validation_epoch_end(self) -> None:
        if self.generation_eval is None:  # the same on every rank: all ranks compute (and sync) or none does
            return
        self._log_val_metrics("val", self._val_metrics)
        for name, metrics in self.__dict__.get("_val_sets", {}).items():
            self._log_val_metrics(f"val/{name}", metrics)

    def _log_val_metrics(self, prefix: str, metrics: PredictionMetrics) -> None:
        values = metrics.compute()  # a collective: every rank calls it for every validation set
        metrics.reset()
        if float(values["n"]) == 0:
            return
        for name, value in values.items():
            if name != "n":
                self.log(f"{prefix}/{name}", value.float(), sync_dist=False, rank_zero_only=False)
        n, acc = float(values["n"]), float(values["accuracy"]) / 100.0  # accuracy: a mean of 0/1 judgments
        self.log(f"{prefix}/n", n, sync_dist=False, rank_zero_only=False)
        self.log(f"{prefix}/accuracy_se", 100.0 * (acc * (1.0 - acc) / n) ** 0.5, sync_dist=False, rank_zero_only=False)
