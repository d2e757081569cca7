"""Stage 2: GRPO with group-shared rollouts (``docs/method.md#training-recipe``, stage 2).

One training step: rollout (G completions per prompt, video encoded and prompt prefilled once per prompt) →
rewards (the YAML-composed callables) → group advantages → μ = ``num_iterations`` policy updates with the
clipped surrogate + β·k3 KL (:func:`~lit_videor2.losses.grpo_loss`). Manual optimisation: gradient accumulation
over ``accumulate_steps`` micro-updates and norm clipping happen here.

Reference model: none when β = 0; with LoRA the same model with adapters disabled (no copy); otherwise a frozen
copy loaded through the same :class:`PolicySpec` and sharded like the policy, optionally synced every
``ref_sync_every`` optimizer steps (TRL's ``sync_ref_model`` with α = 1).

Groups never straddle ranks: each rank generates all G completions of its own prompts, so group statistics are
local and exact. ``advantage_scale='batch'`` uses the std of the rank's batch.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch

from lit_videor2.data.dataset import repeat_columns
from lit_videor2.distributed.loading import load_policy
from lit_videor2.distributed.sharding import shard_policy
from lit_videor2.losses import group_advantages, grpo_loss, mask_truncated
from lit_videor2.losses.grpo import GRPOLossStats
from lit_videor2.models.policy import PolicySpec, inner_model
from lit_videor2.modules.base import PolicyModule
from lit_videor2.rewards import RewardComposition, component_stats
from lit_videor2.rollout import (
    PromptBatch,
    Rollout,
    decode_completions,
    generate_group,
    sequence_logprobs,
    special_token_kwargs,
)

log = logging.getLogger(__name__)

_NONFINITE_HINT = "Check the rewards and the learning rate, or set model.init_args.on_nonfinite=skip."


@dataclass
class RolloutConfig:
    """Sampling of the G completions per prompt (reference: G 8, temperature 0.9, top-k 50, 1024 tokens)."""

    group_size: int = 8
    """G: completions per prompt."""
    max_new_tokens: int = 1024
    """Token limit of a completion."""
    temperature: float = 0.9
    """Sampling temperature (log-probs are taken at the same temperature)."""
    top_k: int = 50
    """Top-k filter (0: off)."""
    top_p: float = 1.0
    """Nucleus filter (1.0: off)."""
    share_prefix: bool = True
    """Encode each video and prefill each prompt once per group (False: once per completion, like TRL)."""
    reuse_vision: bool = True
    """Reuse the rollout's visual features in the log-prob passes (needs a frozen vision tower)."""
    share_prompt: bool = True
    """Run the prompt part of the log-prob passes once per prompt, its KV cache expanded to G rows."""


class StepStats(NamedTuple):
    """What one GRPO training step hands to its logging (this rank's ``N = B * G`` completions)."""

    rollout: Rollout
    """The step's rollout (completion masks, truncation flags)."""
    rewards: torch.Tensor
    """``[N]`` weighted reward sums; NaN where no reward applied."""
    components: dict[str, list[float | None]]
    """Each reward's raw values, ``N`` per reward (None where it does not apply)."""
    advantages: torch.Tensor
    """``[N]`` group-normalised advantages."""
    logps: torch.Tensor
    """``[N, T]`` detached per-token log-probabilities of the last policy pass."""
    mask: torch.Tensor
    """``[N, T]`` float loss mask (truncated completions masked out when configured)."""
    loss: torch.Tensor
    """``[]`` detached loss of the last policy pass."""
    loss_stats: GRPOLossStats
    """Detached diagnostics of that loss (clip fractions, ratio, KL)."""
    gen_s: float
    """Seconds spent generating."""
    update_s: float
    """Seconds spent on log-prob passes, backward and optimizer steps."""


class GRPOModule(PolicyModule):
    """GRPO on video prompts with swappable rewards.

    Logs (``train/``): ``reward`` (total mean), ``reward_std``, ``rewards/<name>_mean`` and ``_std`` per component,
    ``advantage_mean/std/abs``, ``kl``, ``clip_frac_low/high``, ``ratio_mean``, ``loss``, ``completion_len_mean``,
    ``completion_len_max``, ``truncated_frac``, ``zero_std_groups`` (share of groups with all-equal rewards),
    ``unscored_frac`` (completions to which no reward applied: NaN total, advantage 0),
    ``entropy`` (per-token, −mean log-prob of the sampled tokens), ``tokens_per_s`` (generated), ``gen_s``,
    ``update_s``, ``grad_norm``, ``lr``, ``nonfinite_steps`` (updates skipped on a NaN/inf loss or gradient norm).
    Validation: greedy generation scored by format, accuracy, TAC (and TAR).
    """

    def __init__(
        self,
        policy: PolicySpec,
        rewards: RewardComposition,
        *args: Any,
        rollout: RolloutConfig | None = None,
        loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "bnpo",
        beta: float = 0.04,
        epsilon_low: float = 0.2,
        epsilon_high: float = 0.2,
        num_iterations: int = 1,
        advantage_scale: Literal["group", "batch", "none"] = "group",
        advantage_eps: float = 1e-4,
        mask_truncated_completions: bool = False,
        accumulate_steps: int = 1,
        gradient_clip_val: float | None = 1.0,
        ref_sync_every: int | None = None,
        log_completions_every: int = 50,
        on_nonfinite: Literal["skip", "stop"] = "skip",
        **kwargs: Any,
    ) -> None:
        """
        Args:
            policy: Model to train (the merged SFT model in the reference recipe).
            rewards: Named, weighted reward callables (see README "Rewards").
            rollout: Sampling settings and group sharing switches.
            loss_type: Loss aggregation: ``grpo`` (per-sequence mean), ``bnpo`` (token mean, reference),
                ``dr_grpo`` (sum / (N · max_new_tokens)), ``dapo`` (token mean over the global batch).
            beta: KL coefficient (k3 estimator); 0 disables the reference model.
            epsilon_low: Lower clip range of the ratio.
            epsilon_high: Upper clip range of the ratio.
            num_iterations: μ, policy updates per generation (old log-probs captured once when > 1).
            advantage_scale: ``group`` std (reference), ``batch`` std, or ``none`` (Dr.GRPO).
            advantage_eps: Added to the std.
            mask_truncated_completions: Give completions that hit the token limit no loss.
            accumulate_steps: Micro-updates per optimizer step (gradient accumulation).
            gradient_clip_val: Max total gradient norm (None: no clipping).
            ref_sync_every: Copy the policy into the reference model every this many optimizer steps (None: never).
            log_completions_every: Write a completions table every this many training steps (0: never).
            on_nonfinite: On a NaN/inf loss or gradient norm (decided on all ranks together), ``skip`` the update
                (counted in ``train/nonfinite_steps``) or ``stop`` with a checkpoint ``nonfinite.ckpt`` in the run
                folder (the last good checkpoint is kept) and an error.
        """
        super().__init__(policy, *args, **kwargs)
        self.automatic_optimization = False
        self.rewards = rewards
        self.rollout_cfg = rollout or RolloutConfig()
        self.loss_type = loss_type
        self.beta = beta
        self.epsilon_low, self.epsilon_high = epsilon_low, epsilon_high
        self.num_iterations = num_iterations
        self.advantage_scale, self.advantage_eps = advantage_scale, advantage_eps
        self.mask_truncated_completions = mask_truncated_completions
        self.accumulate_steps = accumulate_steps
        self.gradient_clip_val = gradient_clip_val
        self.ref_sync_every = ref_sync_every
        self.log_completions_every = log_completions_every
        self.ref_model: torch.nn.Module | None = None
        self._micro_steps = 0
        self.on_nonfinite = on_nonfinite
        self.nonfinite_steps = 0
        if num_iterations < 1 or accumulate_steps < 1:
            raise ValueError("num_iterations and accumulate_steps must be >= 1")
        if num_iterations > 1 and accumulate_steps > 1:
            raise ValueError(
                f"num_iterations={num_iterations} with accumulate_steps={accumulate_steps} is not supported: TRL "
                "reuses one generation batch of accumulate_steps micro-batches for each of its μ updates, which needs "
                "accumulate_steps rollouts held at once. Use one of them (e.g. raise data.batch_size instead of "
                "accumulate_steps)."
            )
        if on_nonfinite not in ("skip", "stop"):
            raise ValueError(f"on_nonfinite must be 'skip' or 'stop', got {on_nonfinite!r}")

    # -- models ----------------------------------------------------------------------------------------

    def configure_model(self) -> None:
        if self.model is not None:
            return
        super().configure_model()
        if self.beta > 0 and self.policy.lora is None:
            frozen = PolicySpec(**{**self.policy.__dict__, "lora": None, "gradient_checkpointing": False})
            self.ref_model = load_policy(frozen).eval().requires_grad_(False)
            if self.device_mesh is not None:
                shard_policy(self.ref_model, self.device_mesh)

    def _logprobs(self, model: torch.nn.Module, rollout: Rollout, *, share_prompt: bool | None = None) -> torch.Tensor:
        """Teacher-forced completion log-probs ``[N, T]`` under ``model``, with the rollout's positions and features."""
        cfg = self.rollout_cfg
        return sequence_logprobs(
            model,
            rollout,
            reuse_vision=cfg.reuse_vision,
            share_prompt=cfg.share_prompt if share_prompt is None else share_prompt,
            temperature=cfg.temperature,
        )

    def _reference_logprobs(self, rollout: Rollout) -> torch.Tensor | None:
        if self.beta == 0:
            return None
        if self.ref_model is not None:
            return self._logprobs(self.ref_model, rollout)
        with self.model.disable_adapter():  # LoRA: the base model is the reference
            return self._logprobs(self.model, rollout)

    def _sync_reference(self) -> None:
        if self.ref_model is not None and self.ref_sync_every and self.global_step % self.ref_sync_every == 0:
            self.ref_model.load_state_dict(self.model.state_dict())

    @property
    def _share_prompt_with_grad(self) -> bool:
        """Prompt sharing in the policy (gradient) pass: the same as in the no-grad passes, with activation
        checkpointing on or off (the project checkpoints decoder layers with functional KV caches, see
        :mod:`lit_videor2.distributed.activation_checkpointing`), so policy, old and reference log-probs take one path."""
        return self.rollout_cfg.share_prompt

    # -- rollout and rewards ---------------------------------------------------------------------------

    def sharded_models(self) -> list[torch.nn.Module]:
        return [m for m in (self.model, self.ref_model) if m is not None]

    def _rollout(self, batch: dict[str, Any]) -> Rollout:
        cfg = self.rollout_cfg
        with torch.no_grad():
            return generate_group(
                self.model,
                PromptBatch.from_collated(batch),
                group_size=cfg.group_size,
                max_new_tokens=cfg.max_new_tokens,
                **special_token_kwargs(inner_model(self.model), self.tokenizer),
                temperature=cfg.temperature,
                top_k=cfg.top_k,
                top_p=cfg.top_p,
                share_prefix=cfg.share_prefix,
                synced=self.trainer.world_size > 1,
                gather_for_generation=self.policy.gather_for_generation,
            )

    def decode(self, rollout: Rollout) -> list[str]:
        """Completion texts (tokens up to and including EOS; special tokens dropped), as evaluation decodes them
        (:func:`~lit_videor2.rollout.engine.decode_completions`)."""
        return decode_completions(self.tokenizer, rollout)

    def score(
        self, completions: list[str], columns: dict[str, list[Any]]
    ) -> tuple[torch.Tensor, dict[str, list[float | None]]]:
        out = self.rewards(completions, **repeat_columns(columns, self.rollout_cfg.group_size))
        return torch.tensor(out.total, dtype=torch.float32, device=self.device), out.components

    # -- training --------------------------------------------------------------------------------------

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.log_skipped(batch)
        batch, dummy = self.collective_batch(batch, "train")
        if batch is None:
            return
        cfg, G = self.rollout_cfg, self.rollout_cfg.group_size
        t0 = time.perf_counter()
        rollout = self._rollout(batch)
        gen_s = time.perf_counter() - t0
        completions = self.decode(rollout)
        mask = rollout.completion_mask.to(torch.float32)  # [N, T]
        if dummy:  # this rank's batch was empty: same forwards and collectives as the others, no weight, no logs
            rewards = torch.zeros(mask.shape[0], device=self.device)
            components: dict[str, list[float | None]] = {}
            mask = torch.zeros_like(mask)
        else:
            rewards, components = self.score(completions, batch["columns"])  # [N], NaN where no reward applies
        advantages = group_advantages(rewards, G, scale=self.advantage_scale, eps=self.advantage_eps)  # [N]
        if self.mask_truncated_completions:
            mask = mask_truncated(mask, rollout.is_truncated)
        t1 = time.perf_counter()
        with torch.no_grad():
            ref_logps = self._reference_logprobs(rollout)
            old_logps = None
            if self.num_iterations > 1:
                old_logps = self._logprobs(self.model, rollout)
        for _ in range(self.num_iterations):
            logps = self._logprobs(self.model, rollout, share_prompt=self._share_prompt_with_grad)
            loss, stats = grpo_loss(
                logps,
                old_logps,
                ref_logps,
                advantages,
                mask,
                loss_type=self.loss_type,
                epsilon_low=self.epsilon_low,
                epsilon_high=self.epsilon_high,
                beta=self.beta,
                max_completion_length=cfg.max_new_tokens,
            )
            if self.any_rank(not torch.isfinite(loss.detach())):  # every rank skips this backward together
                self.skip_or_stop_nonfinite("GRPO loss", loss.detach(), _NONFINITE_HINT)
            else:
                self.manual_backward(loss / self.accumulate_steps)
            self._micro_steps += 1
            if self._micro_steps % self.accumulate_steps == 0:
                self._optimizer_step()
        update_s = time.perf_counter() - t1
        if dummy:
            return
        self._log_step(
            StepStats(
                rollout, rewards, components, advantages, logps.detach(), mask, loss.detach(), stats, gen_s, update_s
            )
        )
        if self.log_completions_every and batch_idx % self.log_completions_every == 0:
            lengths = rollout.completion_lengths.tolist()
            self._log_completions(batch, completions, rewards, components, advantages, lengths)

    def _optimizer_step(self) -> None:
        opt = self.optimizers()
        params = [p for p in self.model.parameters() if p.grad is not None]
        if not self.any_rank(bool(params)):  # every loss of this window was skipped (non-finite): nothing to apply,
            return  # so neither the optimizer nor the LR schedule moves (as Lightning skips a step whose loss is None)
        if self.gradient_clip_val is not None and params:
            norm = torch.nn.utils.clip_grad_norm_(params, self.gradient_clip_val)
            norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        else:
            norm = self.grad_norm()
        if self.any_rank(not torch.isfinite(norm)):  # the full norm is the same on every rank; agree anyway
            opt.zero_grad(set_to_none=True)
            self.skip_or_stop_nonfinite("GRPO gradient norm", norm, _NONFINITE_HINT)
            return
        self.log("train/grad_norm", norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()
        self.log("train/lr", opt.param_groups[0]["lr"])
        self._sync_reference()

    def total_optimizer_steps(self) -> int:
        """Optimizer steps of the run: ``batches × num_iterations / accumulate_steps`` (capped by ``max_steps``).

        With manual optimisation Lightning counts every ``optimizer.step()`` in ``global_step`` (so ``max_steps``
        is in optimizer steps), but its batch estimate knows neither μ nor ``accumulate_steps``.
        """
        trainer = self.trainer
        estimate = trainer.estimated_stepping_batches  # loads the train loader when needed
        batches = trainer.num_training_batches
        if trainer.max_epochs == -1 or batches == float("inf"):
            return int(estimate)
        steps = int(batches) * max(int(trainer.max_epochs), 1) * self.num_iterations // self.accumulate_steps
        return max(1, min(steps, trainer.max_steps) if trainer.max_steps != -1 else steps)

    # -- logging ---------------------------------------------------------------------------------------

    def _log_step(self, step: StepStats) -> None:
        G = self.rollout_cfg.group_size
        rollout, rewards, advantages, stats, mask = (
            step.rollout,
            step.rewards,
            step.advantages,
            step.loss_stats,
            step.mask,
        )
        lengths = rollout.completion_mask.sum(-1).float()
        n_tok = mask.sum().clamp(min=1)
        scored = rewards[~rewards.isnan()]  # completions to which some reward applied
        metrics = {
            "train/loss": step.loss,
            "train/reward": scored.mean() if scored.numel() else torch.zeros(()),
            "train/reward_std": scored.std() if scored.numel() > 1 else torch.zeros(()),
            "train/unscored_frac": rewards.isnan().float().mean(),
            "train/advantage_mean": advantages.mean(),
            "train/advantage_std": advantages.std() if advantages.numel() > 1 else torch.zeros(()),
            "train/advantage_abs": advantages.abs().mean(),
            "train/clip_frac_low": stats.clip_frac_low,
            "train/clip_frac_high": stats.clip_frac_high,
            "train/ratio_mean": stats.ratio_mean,
            "train/completion_len_mean": lengths.mean(),
            "train/completion_len_max": lengths.max(),
            "train/truncated_frac": rollout.is_truncated.float().mean(),
            "train/zero_std_groups": (advantages.view(-1, G) == 0).all(-1).float().mean() if G > 1 else torch.ones(()),
            "train/entropy": -(step.logps * mask).sum() / n_tok,
            "train/tokens_per_s": torch.tensor(float(lengths.sum()) / max(step.gen_s, 1e-9)),
            "train/gen_s": torch.tensor(step.gen_s),
            "train/update_s": torch.tensor(step.update_s),
        }
        if stats.kl is not None:
            metrics["train/kl"] = stats.kl
        metrics.update({k: torch.tensor(v) for k, v in component_stats(step.components, "train/rewards/").items()})
        self.log_dict({k: v.float().to(self.device) for k, v in metrics.items()}, batch_size=rollout.num_prompts)
        self.log(
            "train/reward_mean", metrics["train/reward"].to(self.device), prog_bar=True, batch_size=rollout.num_prompts
        )

    def _log_completions(self, batch, completions, rewards, components, advantages, lengths) -> None:
        G = self.rollout_cfg.group_size
        ids = [i for i in batch["columns"]["id"] for _ in range(G)]
        rows = [
            {
                "step": self.global_step,
                "id": ids[i],
                "completion": completions[i],
                "num_tokens": int(lengths[i]),
                "reward": None if rewards[i].isnan() else float(rewards[i]),
                "advantage": float(advantages[i]),
                **{n: v[i] for n, v in components.items()},
            }
            for i in range(len(completions))
        ]
        folder = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"completions_rank{self.global_rank}.jsonl", "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        logger = self.logger
        if logger is not None and hasattr(logger, "log_table"):  # e.g. WandbLogger
            cols = list(rows[0])
            logger.log_table(key="completions", columns=cols, data=[[r[c] for c in cols] for r in rows])

    # -- validation ------------------------------------------------------------------------------------

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        batch, dummy = self.collective_batch(batch, "val")  # an empty rank replays a batch, results discarded
        if batch is None:
            return
        self.maybe_score_generation(batch, batch_idx, record=not dummy)  # the same generation forwards on every rank
