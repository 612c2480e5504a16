"""llm_judge: the particle answers each prompt, a judge LM rates the answer from 1 to 10.

JSONL lines: {"prompt": str} (the official human_*.json; `modelswarm data import-official`).
The particle's responses are generated as for reward_model (chat template as
utility.chat_template says, greedy, utility.max_new_tokens: the official
batch_generate_chat_template uses 512). The judge, a local causal LM directory loaded once
per worker next to the particle model, reads `template` with {prompt} and {response}
filled in (through its chat template as `judge_chat_template` says), its reply is taken to
start with `judge_prefix`, and it continues greedily for up to `judge_max_new_tokens`.

The rating is parsed as the official `parse_gemini_score` (evaluate.py) parses it: the
text after the first "Rating: ", up to the next "/10" (or the next "Rating: ", or the end
of the reply), through Python's int(). So "Rating: 7/10", "Rating: 7" (no "/10"),
"Rating: +7/10", " 8 /10" all read as the number, and there is no clamping: "Rating: 0/10"
is 0 and "Rating: 11/10" is 11, as officially. A reply without "Rating: " is
`default_rating` (the official 1). Where int() fails ("Rating: seven/10", "Rating: 7.5/10",
"Rating: 7 out of 10") the official code raises, its retries repeat the same call and the
search crashes; here the reply counts as `default_rating` too. Both kinds of miss are
counted in the journal (`counts.unparsable_ratings`). The utility is the mean rating / 10
(the official mean rating is on 1-10; dividing keeps utilities near [0, 1]).

The default template is the official Gemini prompt (`gemini_eval`), without the stray
" + \\" that the official string literal carries into it.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator

from ..errors import UserError
from .base import Score, Utility, UtilitySection, kind_key
from .side_models import check_model_dir, load_prompts, model_mb, resolve, responses

OFFICIAL_TEMPLATE = (
    "For the following instruction and response, please rate the response on a scale of 1 to 10, where 1 is "
    "the worst and 10 is the best. Please respond with \"Rating: ?/10\" first and then provide your reason.\n\n"
    "Instruction: {prompt}\n\nResponse: {response}")


def parse_rating(reply: str) -> Optional[int]:
    """The official parse_gemini_score: int() of the text between the first "Rating: " and
    the next "/10"; None where there is no "Rating: " (official: 1) or int() fails
    (official: an exception)."""
    if "Rating: " not in reply:
        return None
    try:
        return int(reply.split("Rating: ")[1].split("/10")[0])
    except ValueError:
        return None


def settled(reply: str) -> bool:
    """Has the reply gone far enough that more text cannot change parse_rating? The text
    parsed ends at a "/10" or at a second "Rating: "."""
    parts = reply.split("Rating: ")
    return len(parts) > 2 or (len(parts) == 2 and "/10" in parts[1])


def fill(template: str, prompt: str, response: str) -> str:
    """The template with {prompt} and {response} replaced (other braces are left alone)."""
    return template.replace("{prompt}", prompt).replace("{response}", response)


class LLMJudgeConfig(UtilitySection):
    kind: Literal["llm_judge"] = kind_key("llm_judge")
    judge_model: str = Field(..., description="local directory of the judge: a causal LM "
                             "(AutoModelForCausalLM) with its tokenizer")
    template: str = Field(OFFICIAL_TEMPLATE, description="the judge's prompt; `{response}` (required) and "
                          "`{prompt}` are replaced by the particle's response and the prompt. Default: the "
                          "official Gemini prompt")
    judge_prefix: str = Field("Rating: ", description="text the judge's reply is taken to start with (appended "
                              "after its prompt), so it goes straight to the number")
    judge_max_new_tokens: int = Field(8, ge=1, description="tokens the judge generates after judge_prefix; it "
                                      "stops early once the rating is settled (official: 20)")
    judge_chat_template: Literal["auto", "on", "off"] = Field(
        "auto", description="put the judge's prompt through the judge tokenizer's chat template: `auto` when "
        "it has one")
    default_rating: int = Field(1, ge=1, le=10, description="rating given to an unparsable reply (official: 1)")

    @field_validator("judge_model")
    @classmethod
    def _absolute(cls, v: str) -> str:
        return resolve(v)


class LLMJudge(Utility):
    Config = LLMJudgeConfig

    def check(self) -> None:
        if "{response}" not in self.config.template:
            raise UserError("utility.template", "has no {response} placeholder: the judge would never see the response")
        check_model_dir(self.config.judge_model, "utility.judge_model", "causal_lm")
        if self.config.judge_chat_template == "on":
            from transformers import AutoTokenizer

            if not getattr(AutoTokenizer.from_pretrained(self.config.judge_model), "chat_template", None):
                raise UserError("utility.judge_chat_template", "is 'on' but the judge's tokenizer has no chat template")

    def side_models(self) -> dict[str, float]:
        return {"judge model": model_mb(self.config.judge_model)}

    def load(self, path):
        return load_prompts(path)

    def judge(self, engine):
        """The engine over the judge model, loaded once per worker."""
        return engine.side(self.config.judge_model, "causal_lm")

    def judge_ids(self, tok, prompt: str, response: str) -> list[int]:
        """Token ids the judge continues: its prompt (through its chat template), then judge_prefix."""
        text = fill(self.config.template, prompt, response)
        use = self.config.judge_chat_template
        if use == "on" or (use == "auto" and getattr(tok, "chat_template", None)):
            rendered = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                               add_generation_prompt=True)
            return tok(rendered + self.config.judge_prefix, add_special_tokens=False)["input_ids"]
        return tok(text + "\n" + self.config.judge_prefix)["input_ids"]

    def replies(self, engine, prompts: list[str], answers: list[str]) -> list[str]:
        """The judge's reply to each (prompt, response), judge_prefix included."""
        judge = self.judge(engine)
        tok = judge.tokenizer
        ids = [self.judge_ids(tok, p, a) for p, a in zip(prompts, answers)]
        prefix = self.config.judge_prefix
        out = [prefix] * len(ids)

        def needs_more(k, gen):
            return not settled(prefix + tok.decode(gen, skip_special_tokens=True))

        for k, gen in judge.generate_ids(ids, max_new_tokens=self.config.judge_max_new_tokens, needs_more=needs_more):
            out[k] = prefix + tok.decode(gen, skip_special_tokens=True)
        return out

    def score_with(self, engine, examples, bound: Optional[float] = None) -> Score:
        prompts = [ex["prompt"] for ex in examples]
        answers = responses(engine, examples, self.config.max_new_tokens)
        ratings = [parse_rating(r) for r in self.replies(engine, prompts, answers)]
        unparsable = sum(r is None for r in ratings)
        values = [self.config.default_rating if r is None else r for r in ratings]
        return Score(sum(values) / len(values) / 10, [v / 10 for v in values],  # the ensemble votes on these
                     counts={"unparsable_ratings": unparsable})
