"""reward_model: the particle answers each prompt, a reward model scores the answer.

JSONL lines: {"prompt": str} (the official rm.json; `modelswarm data import-official`).
For each prompt the particle generates a response (chat template as utility.chat_template
says, greedy, utility.max_new_tokens), the (prompt, response) pair goes through the reward
model's chat template ({"role": "user"}, {"role": "assistant"}; without a template:
prompt + "\\n" + response), and the reward model's single logit is the reward. The reward
model is a local AutoModelForSequenceClassification directory with num_labels 1, loaded
once per worker next to the particle model (same device and dtype; Engine.side).

Normalisation, as the official reward_modeling.get_reward_scores: r' = (r - reward_low) /
(reward_high - reward_low), clipped to [0, 1] (the official RM_LOW / RM_HIGH, -3.0605 and
2.65625, are the range of internlm2-7b-reward on rm.json's dev set: set them to your reward
model's range). `mode`:
  default  r'
  concise  (r' + 1 - l) / 2,   l = (tokens - length_low) / (length_high - length_low) clipped to [0, 1]
  verbose  (r' + l) / 2        tokens: the response's length in reward-model tokens (official LEN_LOW 10, LEN_HIGH 201)
  reverse  -(r' + min(1, tokens)) / 2, which is -(r' + 1) / 2 for any response of a token
           or more: the official dual-use study, as get_reward_scores computes it (its
           non-default branch averages r' with the raw token count clipped to [0, 1],
           then negates); the same order of particles as -r'
The utility is the mean over prompts. The official run generates 200 tokens without the
chat template; set max_new_tokens: 200 and chat_template: "off" to match it.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator

from ..errors import UserError
from .base import Score, Utility, UtilitySection, kind_key
from .side_models import check_model_dir, load_prompts, model_mb, resolve, responses


def normalise_reward(r: float, low: float, high: float) -> float:
    """The official min-max mapping of a raw reward to [0, 1]."""
    return min(1.0, max(0.0, (r - low) / (high - low)))


def length_score(tokens: int, low: int, high: int) -> float:
    """The official verbosity score: 0 at `low` tokens or fewer, 1 at `high` or more."""
    return min(1.0, max(0.0, (tokens - low) / (high - low)))


def combine(r: float, tokens: int, p) -> float:
    """One response's utility under `mode` (see the module docstring)."""
    r = normalise_reward(r, p.reward_low, p.reward_high)
    if p.mode == "default":
        return r
    if p.mode == "reverse":
        return -(r + min(1.0, max(0.0, tokens))) / 2
    lng = length_score(tokens, p.length_low, p.length_high)
    return (r + (lng if p.mode == "verbose" else 1.0 - lng)) / 2


class RewardModelConfig(UtilitySection):
    kind: Literal["reward_model"] = kind_key("reward_model")
    reward_model: str = Field(..., description="local directory of the reward model: an "
                              "AutoModelForSequenceClassification with a single logit (num_labels 1)")
    mode: Literal["default", "concise", "verbose", "reverse"] = Field(
        "default", description="`default`: the normalised reward; `concise` / `verbose`: its mean with a "
        "length score favouring short / long responses (the paper's variants); `reverse`: the official "
        "-(r' + 1) / 2, the negated reward")
    reward_low: float = Field(-3.060546875, description="raw reward mapped to 0 (official RM_LOW)")
    reward_high: float = Field(2.65625, description="raw reward mapped to 1 (official RM_HIGH)")
    length_low: int = Field(10, ge=0, description="response tokens at or below which the verbosity score is 0 "
                            "(official LEN_LOW)")
    length_high: int = Field(201, ge=1, description="response tokens at or above which it is 1 (official LEN_HIGH)")

    @field_validator("reward_model")
    @classmethod
    def _absolute(cls, v: str) -> str:
        return resolve(v)


class RewardModel(Utility):
    Config = RewardModelConfig

    def check(self) -> None:
        p = self.config
        if p.reward_high <= p.reward_low:
            raise UserError("utility.reward_high", "must be greater than utility.reward_low")
        if p.length_high <= p.length_low:
            raise UserError("utility.length_high", "must be greater than utility.length_low")
        cfg = check_model_dir(p.reward_model, "utility.reward_model", "sequence_classification")
        if cfg.num_labels != 1:
            raise UserError("utility.reward_model", f"'{p.reward_model}' has {cfg.num_labels} labels; a reward "
                                                    "model has a single logit (num_labels 1)")

    def side_models(self) -> dict[str, float]:
        """Models a worker holds besides the particle, with their size in MB (for `plan`)."""
        return {"reward model": model_mb(self.config.reward_model)}

    def load(self, path):
        return load_prompts(path)

    def reward_engine(self, engine):
        """The engine over the reward model, loaded once per worker."""
        return engine.side(self.config.reward_model, "sequence_classification")

    def pair_ids(self, tok, prompt: str, response: str) -> list[int]:
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template([{"role": "user", "content": prompt},
                                            {"role": "assistant", "content": response}], tokenize=False)
            return tok(text, add_special_tokens=False)["input_ids"]
        return tok(prompt + "\n" + response)["input_ids"]

    def rewards(self, engine, prompts: list[str], answers: list[str]) -> list[float]:
        """The reward model's raw logit for each (prompt, response)."""
        rm = self.reward_engine(engine)
        return rm.sequence_scores([self.pair_ids(rm.tokenizer, p, a) for p, a in zip(prompts, answers)])

    def score_with(self, engine, examples, bound: Optional[float] = None) -> Score:
        answers = responses(engine, examples, self.config.max_new_tokens)
        raw = self.rewards(engine, [ex["prompt"] for ex in examples], answers)
        tok = self.reward_engine(engine).tokenizer
        values = [combine(r, len(tok(a)["input_ids"]), self.config) for r, a in zip(raw, answers)]
        return Score(sum(values) / len(values), per_example=values)  # per-example values: the ensemble votes on them
