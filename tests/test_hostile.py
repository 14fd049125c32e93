"""Issue 27: a hostile user, teacher or repo, a full disk, two writers. Each test names the failure it covers."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from cotforge.builders.salvage import salvage
from cotforge.builders.store import Store
from cotforge.cli import app
from cotforge.corpus import BuildDir, BuildDirError, StudentDir
from cotforge.interop import export
from cotforge.paper import import_paper
from cotforge.recipes import RecipeError, load_recipe
from cotforge.safety.lock import DirectoryInUse, directory_lock
from cotforge.schemas import CoTRecord, RejectionReason
from cotforge.train.checkpoint import load_state, newest_state, save_state
from cotforge.train.config import TrainConfig
from cotforge.train.data import TrainDataError, _cache_key, empty_completions_note, load_pairs, tokenize

from .helpers import PAPER_SAMPLES, PAPER_SVAMP, made_sweep, recipe_yaml, scripted_recipe, write_problems
from .students import tiny_llama
from .test_build import all_rows, build

HOSTILE = ["..", "../../../../outside/x", "/abs/outside", "a/b", "nul\x00", "x" * 300]
SECRET = "sk-live0123456789abcdef"


class Payload:
    """Unpickling this runs a shell command: what a planted file in a data folder would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cotforge", *args], capture_output=True, text=True, timeout=120, env=os.environ
    )


def patched_cli(patch: str, *args: str) -> subprocess.CompletedProcess:
    """`cotforge ARGS` through its real entry point, with `patch` (Python) run first: how a full disk is made."""
    code = f"import sys\n{patch}\nfrom cotforge.entry import main\nsys.argv = ['cotforge', *sys.argv[1:]]\nmain()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


ENOSPC_ON_FSYNC = (
    "import errno, os\ndef full(fd): raise OSError(errno.ENOSPC, 'No space left on device')\nos.fsync = full"
)


def tiny_student(folder: Path) -> Path:
    """A tokenizer made on the spot (no download) and a tiny Llama: enough to tokenize and take a step."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = "question answer the is what a b c 1 2 3 4 5 + = . ? : we work it out".split()  # noqa: SIM905
    vocab = {"[UNK]": 0, "[EOS]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="[EOS]", unk_token="[UNK]", pad_token="[EOS]")
    return tiny_llama(folder, tokenizer)


def pairs_parquet(path: Path, rows: dict) -> Path:
    pl.DataFrame(rows).write_parquet(path)
    return path


# ---- 1. files written outside the output directory ------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("field", ["teacher", "dataset"])
def test_records_refuse_names_that_would_leave_their_folder(paper_build: Path, field: str, name: str) -> None:
    record = next(iter(BuildDir(paper_build).read_subsets().values()))[0]
    with pytest.raises(ValidationError, match=field):
        CoTRecord.model_validate(record.model_dump() | {field: name})


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize(("where", "field"), [("name", "name"), ("source", "sources[0].name"), ("label", "label")])
def test_recipe_names_that_would_leave_builds_are_refused_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, field: str, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    problems = write_problems(tmp_path / "p.jsonl", ["q answer=5"])
    recipe = {
        "name": name if where == "name" else "ok",
        "sources": [{"path": str(problems), "answer_type": "number", "name": name if where == "source" else "p"}],
        "teachers": [{"model": "m", "base_url": "http://127.0.0.1:9/v1", "label": name if where == "label" else "t"}],
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError, match=re.escape(field)):
        load_recipe(tmp_path / "r.yaml")
    result = CliRunner().invoke(app, ["build", "--recipe", "r.yaml", "--dry-run"])
    assert result.exit_code == 2 and field in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl", "r.yaml"], "nothing written anywhere"


def test_a_subset_name_that_would_leave_its_folder_is_never_written(tmp_path: Path) -> None:
    from cotforge.safety.names import UnsafeName

    for name in HOSTILE:
        with pytest.raises(UnsafeName, match=r"^subset: "):
            BuildDir(tmp_path / "out").write_subsets({name: []}, [])
    assert not (tmp_path / "out" / "subsets").exists() or not any((tmp_path / "out" / "subsets").iterdir())


# ---- 2. code execution from a data folder ---------------------------------------------------------------------


def test_a_planted_tokenized_cache_does_not_run(tmp_path: Path) -> None:
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(str(tiny_student(tmp_path / "s")))
    pairs = [("what is 2 + 3 ?", "we work it out . the answer is 5")]
    cache = tmp_path / "out" / "tokenized"
    cache.mkdir(parents=True)
    marker = tmp_path / "ran"
    torch.save({"examples": Payload(marker), "counts": {}}, cache / f"{_cache_key(tokenizer, 'plain', 64, pairs)}.pt")
    data = tokenize(pairs, tokenizer, "plain", 64, cache)
    assert not marker.exists(), "the planted pickle ran"
    assert len(data.examples) == 1
    assert tokenize(pairs, tokenizer, "plain", 64, cache).examples == data.examples  # the cache was made again


def test_a_planted_checkpoint_does_not_run_and_resume_takes_the_one_before(tmp_path: Path) -> None:
    save_state(StudentDir(tmp_path).checkpoint(2), {"step": 2})
    planted = StudentDir(tmp_path).checkpoint(4)
    planted.mkdir(parents=True)
    marker = tmp_path / "ran"
    torch.save({"step": Payload(marker)}, planted / "state.pt")
    lines: list[str] = []
    found = newest_state(StudentDir(tmp_path), lines.append)
    assert not marker.exists(), "the planted pickle ran"
    assert found is not None and found[0].name == "step-2" and found[1] == {"step": 2}
    assert "step-4 cannot be read" in lines[0]


def test_optimizer_and_scheduler_state_load_without_pickle(tmp_path: Path) -> None:
    """weights_only=True (torch 2.13) holds everything a checkpoint saves: AdamW, LambdaLR, the RNG, the history."""
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5)
    model(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "step": 1,
        "history": [{"step": 1, "loss": 0.5}],
    }
    save_state(StudentDir(tmp_path).checkpoint(1), state)
    loaded = load_state(StudentDir(tmp_path).checkpoint(1) / "state.pt")
    fresh = torch.optim.AdamW(torch.nn.Linear(4, 2).parameters(), lr=0.1)
    fresh.load_state_dict(loaded["optimizer"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert loaded["history"] == state["history"] and torch.equal(loaded["rng"], state["rng"])


# ---- 3. two writers on one directory --------------------------------------------------------------------------


def test_a_second_build_on_a_held_directory_exits_2_at_once_asking_nothing(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(5)])
    recipe = recipe_yaml(tmp_path / "r.yaml", scripted_recipe(problems, scripted.url))
    out = tmp_path / "out"
    with directory_lock(out, "build"):
        result = run_cli("build", "--recipe", str(recipe), "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert f"in use by process {os.getpid()} (build)" in result.stderr and "Traceback" not in result.stderr
    assert scripted.log == [] and not (out / "store.sqlite").exists()


def test_salvage_export_and_import_wait_for_the_holder(tmp_path: Path, paper_build: Path) -> None:
    held = tmp_path / "held"
    shutil.copytree(paper_build, held)
    with directory_lock(held, "build"):
        for action in (
            lambda: salvage(held),
            lambda: export(held, tmp_path / "x", "trl-prompt-completion"),
            lambda: import_paper(PAPER_SVAMP, held),
        ):
            with pytest.raises(DirectoryInUse, match=f"process {os.getpid()} \\(build\\)"):
                action()
    assert not (tmp_path / "x").exists()


# ---- 4. one poisoned answer stops a build for good ------------------------------------------------------------


def test_poisoned_answers_are_rejections_with_reasons_and_bad_usage_is_not_retried(tmp_path: Path, scripted) -> None:
    questions = ["ok answer=5", "sur fault=surrogate", "nul fault=nul", "big fault=huge", "neg answer=5 fault=negusage"]
    problems = write_problems(tmp_path / "p.jsonl", questions)
    recipe = scripted_recipe(problems, scripted.url)
    report = build(recipe, tmp_path / "out")
    assert report.complete and report.accepted == 2 and report.failed == 0
    assert report.rejected == {RejectionReason.unstorable_text: 2, RejectionReason.too_long: 1}
    rows = {r.question if isinstance(r, CoTRecord) else r.detail: r for r in all_rows(tmp_path / "out")}
    neg = next(r for r in rows.values() if isinstance(r, CoTRecord) and "neg" in r.question)
    assert neg.cost_usd is None and neg.usage.prompt_tokens == 0  # unknown, not a retry
    assert sum("neg" in e.message for e in scripted.log) == 1, "an answer with nonsense usage is paid once"
    rejected = [r for r in all_rows(tmp_path / "out") if not isinstance(r, CoTRecord)]
    assert any("lone surrogate" in r.detail for r in rejected) and any("NUL" in r.detail for r in rejected)
    assert any("over max_answer_chars=100,000" in r.detail for r in rejected)
    sent = len(scripted.log)
    assert build(recipe, tmp_path / "out").complete and len(scripted.log) == sent, "a re-run asks nothing"


# ---- 4b. issue 36: a teacher's answer is data, never a crash ------------------------------------------------------


@pytest.mark.parametrize("digits", [309, 400, 5000])
def test_an_answer_with_a_number_too_big_for_a_float_is_unparseable_not_a_crash(digits: int) -> None:
    from cotforge.answers import AnswerType, answers_match, extract_answer, format_number, normalise_gold, parse_number

    huge = "9" * digits
    for text in (f"The answer is {huge}", f"The answer is {huge}½", f"#### {huge}/{huge}", f"We get {huge}."):
        assert extract_answer(text, AnswerType.number) is None, text[:30]
    assert parse_number(huge) is None and parse_number(f"{huge}½") is None and format_number(float("inf")) == "inf"
    assert not answers_match(huge, huge, AnswerType.number)
    with pytest.raises(ValueError, match="is not a number answer"):
        normalise_gold(huge, AnswerType.number)
    assert extract_answer("The answer is " + "9" * 300, AnswerType.number) is not None, "a big float is a number"


def _completion(choice: dict | None = None, message: dict | None = None, usage: object = None) -> dict:
    message = {"role": "assistant", "content": "We work it out.\nThe answer is 5", **(message or {})}
    body: dict = {"choices": [{"index": 0, "message": message, "finish_reason": "stop", **(choice or {})}]}
    if usage is not None:
        body["usage"] = usage
    return body


@pytest.fixture
def row_of(tmp_path: Path):
    """The stored row of the first answer in a completion, as the build makes it; it must also fit a Parquet row."""
    from cotforge.builders.plan import plan_jobs
    from cotforge.builders.records import answer_to_row
    from cotforge.builders.teachers.base import answers_from_completion
    from cotforge.recipes.sources import load_sources
    from cotforge.schemas.tables import to_frame

    recipe = scripted_recipe(write_problems(tmp_path / "p.jsonl", ["q"]), "http://127.0.0.1:9/v1")
    job = next(iter(plan_jobs(recipe, load_sources(recipe, sample=False))))

    def row(completion: dict) -> object:
        made = answer_to_row(job, job.keys[0], recipe, answers_from_completion(completion, 0.1)[0], [])
        to_frame([made], type(made))
        return made

    return row


@pytest.mark.parametrize("finish_reason", [7, ["stop"], {"why": "stop"}, True, "x" * 10_000])
def test_a_finish_reason_that_is_no_short_text_is_unknown(row_of, finish_reason: object) -> None:
    row = row_of(_completion({"finish_reason": finish_reason}))
    assert isinstance(row, CoTRecord) and row.finish_reason is None


@pytest.mark.parametrize("refusal", [{"reason": "policy"}, ["no"], 1, True])
def test_a_refusal_that_is_not_text_is_a_malformed_rejection(row_of, refusal: object) -> None:
    row = row_of(_completion(message={"refusal": refusal}))
    assert row.reason is RejectionReason.malformed and "refusal" in row.detail and "not text" in row.detail


def test_a_refusal_too_long_to_be_one_is_too_long(row_of) -> None:
    row = row_of(_completion(message={"content": None, "refusal": "no " * 40_000}))
    assert row.reason is RejectionReason.too_long and "the refusal: 120,000 characters" in row.detail


def test_vllm_and_ray_answers_pass_the_same_edge() -> None:
    from cotforge.builders.teachers.base import traced_answer
    from cotforge.builders.teachers.reasoning import separate

    answer = traced_answer(separate("The answer is 5"), 7, None, None, refusal=3)  # type: ignore[arg-type]
    assert answer.finish_reason is None and answer.malformed == "refusal: an int, not text"


@pytest.mark.parametrize("count", [2**63, 2**64 + 1, 10**30, 1e300, float("inf")])
def test_token_counts_out_of_range_are_unknown_and_the_outputs_are_written(row_of, count: object) -> None:
    usage = {"prompt_tokens": count, "completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": count}}
    row = row_of(_completion(usage=usage))
    assert isinstance(row, CoTRecord) and row.usage.prompt_tokens == 0 and row.cost_usd is None
    assert row.reasoning_tokens is None
    with pytest.raises(ValidationError):
        CoTRecord.model_validate(row.model_dump() | {"usage": {"prompt_tokens": 2**63}})


def test_a_build_with_huge_usage_writes_its_outputs(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["ok answer=5", "big answer=5 fault=hugeusage"])
    report = build(scripted_recipe(problems, scripted.url), tmp_path / "out")
    assert report.complete and report.accepted == 2
    subsets = BuildDir(tmp_path / "out").read_subsets()
    assert sum(len(rows) for rows in subsets.values()) == 2, "the Parquet outputs are written"


def test_batch_lines_out_of_shape_are_asked_again_and_bad_answers_are_stored(tmp_path: Path, scripted) -> None:
    questions = ["fine answer=5", "junk answer=5 batchjunk", "fin answer=5 fault=finishint"]
    questions += ["ref answer=5 fault=refusalobj", "big answer=5 fault=hugeusage"]
    problems = write_problems(tmp_path / "p.jsonl", questions)
    teacher = {"backend": "openai-batch", "batch_poll_s": 0.01}
    report = build(scripted_recipe(problems, scripted.url, teacher=teacher), tmp_path / "out")
    assert report.complete and report.accepted == 4 and report.rejected == {RejectionReason.malformed: 1}
    assert [len(b["lines"]) for b in scripted.batches.values()] == [5, 1], "only the junk answer is asked again"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"message": {"content": [{"type": "text", "text": "The answer is 5"}]}}, "content: a list, not text"),
        ({"message": {"content": 5}}, "content: an int, not text"),
        ({"choice": {"message": "The answer is 5"}}, "message: a str, not an object"),
        ({"choice": {"message": None}}, "message: missing"),
    ],
)
def test_fields_out_of_shape_are_malformed_rejections(row_of, change: dict, why: str) -> None:
    completion = _completion(change.get("choice"), change.get("message"))
    if "choice" in change:
        completion["choices"][0] |= change["choice"]
    row = row_of(completion)
    assert row.reason is RejectionReason.malformed and why in row.detail


def test_choices_out_of_shape_are_answers_in_their_place() -> None:
    from cotforge.builders.teachers.base import answers_from_completion

    good = _completion()["choices"][0]
    answers = answers_from_completion({"choices": ["text", {**good, "index": "1"}, {**good, "index": None}]}, None)
    assert [a.malformed for a in answers] == ["choice 0: a str, not an object", None, None]
    usage = {"prompt_tokens": [1], "completion_tokens": {"n": 2}, "completion_tokens_details": ["x"]}
    assert answers_from_completion(_completion(usage=usage), None)[0].usage is None


# ---- 4c. issue 36: one rule for traces ---------------------------------------------------------------------------

DECOY = "First guess: The answer is 99."


@pytest.mark.parametrize(
    ("text", "answer", "trace"),
    [
        (f"The answer is 5\n<think>{DECOY}</think>", "The answer is 5", DECOY),
        (f"The answer is 5\n<think>{DECOY}", "The answer is 5", DECOY),
        (f"<think>a</think>The answer is 5\n<think>{DECOY}</think>The answer is 7", "The answer is 5", None),
        (f"<think>a <think>b</think> {DECOY}</think>The answer is 5", "The answer is 5", f"a <think>b</think> {DECOY}"),
        (f"a <think>b</think> {DECOY}</think>The answer is 5", "The answer is 5", f"a <think>b</think> {DECOY}"),
        (f"<think>a</think>Let me check. <think>{DECOY}</think>The answer is 5", "The answer is 5", None),
        ("We think <think> is a tag. The answer is 5", "We think <think> is a tag. The answer is 5", None),
    ],
)
def test_the_answer_is_read_after_the_trace_never_inside_it(text: str, answer: str, trace: str | None) -> None:
    from cotforge.answers.reasoning import split_reasoning

    split = split_reasoning(text)
    assert split.answer == answer and split.closed
    assert "99" not in split.answer
    if trace is not None:
        assert split.reasoning == trace


def test_a_trace_in_a_field_and_inline_is_kept_once_and_never_in_the_rationale() -> None:
    from cotforge.builders.teachers.reasoning import separate, separate_parsed

    inline = f"<think>\n{DECOY}\n</think>\n\nThe answer is 5"
    for separated in (separate(inline, DECOY), separate_parsed(inline, (DECOY, inline))):
        assert separated.text == "The answer is 5" and separated.reasoning == DECOY


@pytest.mark.parametrize("shape", ["after", "nested", "both"])
def test_trace_shapes_leave_no_trace_text_in_the_rationale(tmp_path: Path, scripted, shape: str) -> None:
    from .scripted_server import TRACE

    problems = write_problems(tmp_path / "p.jsonl", [f"q answer=5 shape={shape}"])
    report = build(scripted_recipe(problems, scripted.url), tmp_path / "out")
    assert report.accepted == 1, report
    (record,) = all_rows(tmp_path / "out")
    assert record.predicted_answer == "5" and "99" not in record.rationale and TRACE not in record.rationale
    assert TRACE in (record.reasoning or "") and (record.reasoning or "").count(TRACE) <= 2


# ---- 4d. issue 36: weights and guides -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arm", "why"),
    [
        ("g1:1e308+g6:1e308", "the weights of g1, g6 add up to more than a float holds"),
        ("g1:1e-320+g6:1", "the weight of g1 is too small a share"),
        ("g1:1e-7+g6:1", "the weight of g1 is too small a share"),
        ("g1:inf+g6:1", "the weight of g1 must be a number above 0"),
    ],
)
def test_arm_weights_that_overflow_or_underflow_are_exit_2_naming_the_weight(
    tmp_path: Path, arm: str, why: str
) -> None:
    from cotforge.sweeps.arms import parse_arm
    from cotforge.sweeps.settings import SweepError

    with pytest.raises(SweepError, match=re.escape(why)):
        parse_arm(arm)
    args = ["sweep", "--dataset", "x", "--student", "s", "--out", str(tmp_path / "o"), "--arm", "g3", "--arm", arm]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and why in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("mixture", "why"),
    [
        ({"a": 1e308, "b": 1e308}, "mixture: the weights of a, b add up to more than a float holds"),
        ({"a": 1e-320, "b": 1.0}, "mixture: the weight of a is too small a share"),
        ({"a": float("inf"), "b": 1.0}, "mixture: the weight of a must be a number above 0"),
        ({"a": float("nan"), "b": 1.0}, "mixture: the weight of a must be a number above 0"),
    ],
)
def test_mixture_weights_that_overflow_or_underflow_are_refused_naming_the_weight(mixture: dict, why: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(why)):
        TrainConfig(model="m", dataset="d", mixture=mixture)
    args = [f"--mix={name}:{weight!r}" for name, weight in mixture.items()]
    result = CliRunner().invoke(app, ["train", "--dataset", "d", "--model", "m", *args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert why in result.output or "--mix a:" in result.output  # inf and nan: no weight at all on the command line


@pytest.mark.parametrize(
    "body",
    [
        "We add them.\n**The answer is** 5",
        "We add them. *The answer is 5*",
        "We add them.\n__The answer__ is 5",
        "We add them.\nThe\u00a0answer\u2009is 5",
        "We add them. The answer\nis 5",
        "We add them, so \\boxed{5}",
        "We add them.\n> The answer is 5",
    ],
)
def test_the_no_answer_line_check_sees_through_markdown_spaces_breaks_and_boxes(body: str) -> None:
    from cotforge.schemas.guides import CustomDemonstration

    with pytest.raises(ValidationError, match="leave out 'The answer is"):
        CustomDemonstration(question="q", answer="5", by_level={1: body})


def test_a_demonstration_answer_with_a_line_break_is_refused() -> None:
    from cotforge.schemas.guides import CustomDemonstration

    with pytest.raises(ValidationError, match="answer\n  Value error, one line: it ends the demonstration"):
        CustomDemonstration(question="q", answer="5\nThe answer is 7", by_level={1: "We add them."})


# ---- 6. torn files are trusted ---------------------------------------------------------------------------------


def test_resume_skips_a_torn_checkpoint_for_the_newest_complete_one(tmp_path: Path) -> None:
    save_state(StudentDir(tmp_path).checkpoint(2), {"step": 2})
    save_state(StudentDir(tmp_path).checkpoint(4), {"step": 4, "weights": torch.zeros(1000)})
    torn = StudentDir(tmp_path).checkpoint(4) / "state.pt"
    torn.write_bytes(torn.read_bytes()[:300])  # what a kill or a full disk left of an in-place write
    (tmp_path / "checkpoints" / ".step-6.partial-1").mkdir()  # a temporary name is not a checkpoint
    lines: list[str] = []
    found = newest_state(StudentDir(tmp_path), lines.append)
    assert found is not None and found[1]["step"] == 2
    assert len(lines) == 1 and "step-4 cannot be read" in lines[0] and "trying the one before" in lines[0]


def test_a_killed_salvage_leaves_the_store_it_found(tmp_path: Path, paper_build: Path, monkeypatch) -> None:
    import cotforge.builders.salvage as module

    folder = tmp_path / "b"
    shutil.copytree(paper_build, folder)
    with Store(folder / "store.sqlite") as store:
        store.put_all(r for rows in BuildDir(folder).read_subsets().values() for r in rows[:3])
    before = (folder / "store.sqlite").read_bytes()
    real_fill = module._fill

    def killed(fresh_path: Path, *args) -> None:
        real_fill(fresh_path, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "_fill", killed)
    with pytest.raises(KeyboardInterrupt):
        salvage(folder)
    assert (folder / "store.sqlite").read_bytes() == before, "the store a build trusts is the one it found"
    assert not list(folder.glob("store.sqlite.partial-*"))
    monkeypatch.setattr(module, "_fill", real_fill)
    report = salvage(folder)
    with Store(folder / "store.sqlite") as store:
        assert store.count() == report.from_store + report.from_outputs and report.from_outputs > 0


def test_a_killed_import_leaves_the_old_folder_and_push_refuses_a_folder_without_a_report(
    tmp_path: Path, monkeypatch
) -> None:
    from cotforge.hub import push

    out = tmp_path / "imported"
    import_paper(PAPER_SAMPLES, out)
    before = sorted(p.name for p in (out / "subsets").iterdir())

    def killed(*args) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(BuildDir, "write_report", killed)
    with pytest.raises(KeyboardInterrupt):
        import_paper(PAPER_SAMPLES, out)
    assert sorted(p.name for p in (out / "subsets").iterdir()) == before and BuildDir(out).read_report() is not None
    assert [p.name for p in tmp_path.iterdir()] == ["imported"], "no temporary folder left"
    # A folder a run was stopped in: subsets without a report, or a report that counts other files.
    (out / "build_report.json").unlink()
    with pytest.raises(BuildDirError, match=r"no build_report\.json"):
        push(out, "me/cot")
    monkeypatch.undo()
    import_paper(PAPER_SAMPLES, out)
    next((out / "subsets").iterdir()).unlink()
    with pytest.raises(BuildDirError, match="does not count the subsets on disk"):
        push(out, "me/cot")


# ---- 7. secrets leak --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        f"http://user:{SECRET}@127.0.0.1:9/v1",
        f"http://127.0.0.1:9/{SECRET}/v1",
        f"http://127.0.0.1:9/v1?api_key={SECRET}",
    ],
)
def test_a_key_in_the_base_url_is_never_stored_or_printed(tmp_path: Path, base_url: str) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["q answer=5"])
    recipe = {
        "sources": [{"path": str(problems), "answer_type": "number"}],
        "teachers": [{"model": "m", "base_url": base_url, "max_retries": 0, "retry_backoff_s": 0.01}],
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    result = run_cli("build", "--recipe", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "out"))
    assert SECRET not in result.stdout + result.stderr
    stored = [p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert all(SECRET.encode() not in data for data in stored)
    if "user:" not in base_url:  # a valid URL: the build ran, and the same command resumes it
        assert "***" in (tmp_path / "out" / "recipe.yaml").read_text()
        again = run_cli("build", "--recipe", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "out"))
        assert "another recipe" not in again.stderr and SECRET not in again.stdout + again.stderr
    else:
        assert result.returncode == 2 and "***" in result.stderr


def test_extending_a_build_whose_stored_teacher_url_was_redacted_asks_for_the_url() -> None:
    from cotforge.recipes.identity import extend_recipe
    from cotforge.recipes.loader import parse_recipe

    def recipe(teachers: list[dict]) -> object:
        return parse_recipe({"sources": ["gsm8k"], "teachers": teachers}, "test")

    stored = recipe([{"model": "a", "base_url": "http://127.0.0.1:9/***/v1"}])
    with pytest.raises(RecipeError, match="stored URL of teacher a is redacted"):
        extend_recipe(stored, recipe([{"model": "b", "base_url": "http://127.0.0.1:9/v1"}]))
    again = recipe([{"model": "a", "base_url": f"http://127.0.0.1:9/{SECRET}/v1"}])
    assert extend_recipe(stored, again).teachers[0].base_url == f"http://127.0.0.1:9/{SECRET}/v1"


def test_an_unknown_secret_field_is_not_echoed(tmp_path: Path) -> None:
    recipe = {"sources": ["gsm8k"], "teachers": [{"model": "gpt-4o", "api_key": SECRET}]}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError) as caught:
        load_recipe(tmp_path / "r.yaml")
    assert "teachers[0].openai: api_key: not an option of an openai teacher" in str(caught.value)
    assert SECRET not in str(caught.value)


# ---- 8. tracebacks and wrong codes for what a user causes --------------------------------------------------------

FULL = "free space and run the same command: nothing stored is lost"


def test_disk_full_in_a_build_is_exit_2_naming_the_store(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["q answer=5"])
    recipe = recipe_yaml(tmp_path / "r.yaml", scripted_recipe(problems, scripted.url))
    patch = (
        "import sqlite3\nimport cotforge.builders.store as s\n"
        "def full(self, rows): raise sqlite3.OperationalError('database or disk is full')\n"
        "s.Store._put_all = full"
    )
    result = patched_cli(patch, "build", "--recipe", str(recipe), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"no space left on / while writing {tmp_path / 'out' / 'store.sqlite'}; {FULL}" in result.stderr


def test_disk_full_in_an_export_is_exit_2_naming_the_file(tmp_path: Path, paper_build: Path) -> None:
    out = tmp_path / "exported"
    result = patched_cli(ENOSPC_ON_FSYNC, "export", str(paper_build), "-f", "trl-messages", "-o", str(out))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"while writing {out}/" in result.stderr and FULL in result.stderr
    assert not any(out.glob("*.jsonl")), "no half file"


def test_disk_full_in_training_is_exit_2(tmp_path: Path) -> None:
    student = tiny_student(tmp_path / "s")
    data = pairs_parquet(tmp_path / "d.parquet", {"prompt": ["what is 2 + 3 ?"], "completion": ["the answer is 5"]})
    args = ["train", "--dataset", str(data), "--model", str(student), "--out", str(tmp_path / "o")]
    result = patched_cli(
        ENOSPC_ON_FSYNC, *args, "--max-steps", "1", "--micro-batch-size", "1", "--global-batch-size", "1"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"while writing {tmp_path / 'o' / 'tokenized'}/" in result.stderr and FULL in result.stderr


def test_disk_full_in_a_push_is_exit_2(tmp_path: Path, paper_build: Path) -> None:
    patch = (
        "import errno\nimport cotforge.hub as h\n"
        "class Full:\n"
        "    def create_repo(self, *a, **k): raise OSError(errno.ENOSPC, 'No space left', '/tmp/hf-cache/x.lock')\n"
        "h.hub_api = lambda token: Full()"
    )
    result = patched_cli(patch, "push", str(paper_build), "me/cot", "--no-check")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "while writing /tmp/hf-cache/x.lock" in result.stderr and FULL in result.stderr


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        ({"prompt": ["a", "b"]}, "needs 'prompt' and 'completion' columns, or 'messages'; it has prompt"),
        ({"prompt": ["a", "b"], "completion": ["x", None]}, "row 1: completion is missing (null)"),
        ({"prompt": ["a", "b"], "completion": [1, 2]}, "row 0: completion is a int, not text"),
        ({"prompt": [1, 2], "completion": ["x", "y"]}, "row 0: prompt is a int, not text"),
    ],
)
def test_bad_training_rows_are_refused_with_row_and_field(tmp_path: Path, rows: dict, why: str) -> None:
    data = pairs_parquet(tmp_path / "d.parquet", rows)
    with pytest.raises(TrainDataError, match=re.escape(why)):
        load_pairs(str(data))


def test_bad_rows_are_refused_before_the_model_loads(tmp_path: Path) -> None:
    data = pairs_parquet(
        tmp_path / "d.parquet",
        {"prompt": ["a"], "completion": [None]},
    )
    result = CliRunner().invoke(app, ["train", "--dataset", str(data), "--model", str(tmp_path / "no-model")])
    assert result.exit_code == 2 and "row 0: completion is missing" in result.output


def test_a_chat_without_a_user_turn_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    rows = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]},
    ]
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.Dataset.from_list(rows))
    with pytest.raises(TrainDataError, match="row 1: messages' user turn is missing"):
        load_pairs("me/chats")


# ---- 9. silently wrong -------------------------------------------------------------------------------------------


def test_a_global_batch_that_does_not_split_is_exit_2_naming_both(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="global_batch_size 4 is not a multiple of micro_batch_size 3"):
        TrainConfig(model="m", dataset="d", micro_batch_size=3, global_batch_size=4)
    args = ["train", "--dataset", "d", "--model", "m", "--micro-batch-size", "3", "--global-batch-size", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "global_batch_size 4 is not a multiple of micro_batch_size 3" in result.output
    from cotforge.train.config import TrainConfigError, micro_batches_per_step

    settings = TrainConfig(model="m", dataset="d", micro_batch_size=4, global_batch_size=8).optimisation
    assert micro_batches_per_step(settings, 2) == 1
    with pytest.raises(TrainConfigError, match="micro_batch_size 4 x 3 processes"):
        micro_batches_per_step(settings, 3)


def test_empty_completions_are_warned() -> None:
    note = empty_completions_note([("q", "a"), ("q2", " "), ("q3", "")])
    assert note is not None and "2 of 3 rows have an empty completion (first: row 1)" in note
    assert empty_completions_note([("q", "a")]) is None


def test_a_model_folder_with_its_own_code_is_not_run(tmp_path: Path) -> None:
    from cotforge.train.student import StudentError, load_causal_lm

    folder = tiny_student(tmp_path / "s")
    marker = tmp_path / "ran"
    config = json.loads((folder / "config.json").read_text())
    config |= {
        "model_type": "custom_x",
        "auto_map": {"AutoConfig": "custom.XConfig", "AutoModelForCausalLM": "custom.X"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "custom.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    with pytest.raises(StudentError, match="trust_remote_code=False"):
        load_causal_lm(str(folder))
    assert not marker.exists()


# ---- issue 36: sweep files, files a recipe names, pull, hostile repo cards, YAML aliases -------------------------

PASSWORD = "correct horse battery staple"


def yaml_bomb(levels: int) -> str:
    """Nested aliases: a few hundred bytes that stand for 10**levels values once expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines)


def test_yaml_aliases_in_a_recipe_are_refused_at_once(tmp_path: Path) -> None:
    write_problems(tmp_path / "p.jsonl", ["q answer=5"])
    bomb = yaml_bomb(8).replace("\n", "\n    ")
    (tmp_path / "r.yaml").write_text(
        "name: bomb\nsources: [{path: p.jsonl, answer_type: number}]\nteachers:\n- model: m\n"
        f"  base_url: http://127.0.0.1:9/v1\n  extra_body:\n    {bomb}\n"
    )
    limited = "import resource\nlimit = 1536 * 2**20\nresource.setrlimit(resource.RLIMIT_AS, (limit, limit))"
    code = f"import sys\n{limited}\nfrom cotforge.entry import main\nsys.argv = ['cotforge', *sys.argv[1:]]\nmain()"
    try:  # a dry run costs about 0.8 GB of address space; the bomb expanded would take tens of GB and minutes
        result = subprocess.run(
            [sys.executable, "-c", code, "build", "--recipe", "r.yaml", "--dry-run"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the dry run was still expanding the aliases after 30 s")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "r.yaml: line 8" in result.stderr and "alias *a0 is refused" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink", "content"])
def test_guides_are_read_only_beside_the_recipe_and_never_echoed(tmp_path: Path, where: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text(f"machine api.example.com login me password {PASSWORD}\n")
    folder = tmp_path / "recipes"
    folder.mkdir()
    problems = write_problems(folder / "p.jsonl", ["q answer=5"])
    (folder / "link.yaml").symlink_to(home / ".netrc")
    (folder / "bad.yaml").write_text(f"levels: {PASSWORD}\nanswer_form: [{PASSWORD}]\n")
    named = {
        "parent": "../home/.netrc",
        "absolute": str(home / ".netrc"),
        "symlink": "link.yaml",
        "content": "bad.yaml",
    }
    recipe = recipe_yaml(folder / "r.yaml", scripted_recipe(problems, "http://127.0.0.1:9/v1"))
    recipe.write_text(recipe.read_text() + f"guides: {named[where]}\n")
    result = CliRunner().invoke(app, ["build", "--recipe", str(recipe), "--dry-run"])
    assert result.exit_code == 2 and "guides" in result.output and "Traceback" not in result.output
    assert PASSWORD not in result.output and "password" not in result.output
    if where != "content":
        assert "is not in the recipe's folder" in result.output


def test_error_text_keeps_markup_and_emoji_codes_as_written(tmp_path: Path) -> None:
    name = str(tmp_path / ":x: [bold]nope[/bold] :smile:.yaml")
    result = CliRunner().invoke(app, ["build", "--recipe", name, "--dry-run"])
    assert result.exit_code == 2
    assert ":x: [bold]nope[/bold] :smile:.yaml: no such recipe file" in " ".join(result.output.split())


@pytest.mark.parametrize("outside", ["relative", "absolute"])
def test_a_torn_or_tampered_cell_is_left_out_of_the_report_and_the_viewer(tmp_path: Path, outside: str) -> None:
    from .test_view import Viewer

    sweep = made_sweep(tmp_path / "sweep", {1: [True, False], 3: [True, True], 5: [False, True]})
    secret = tmp_path / "elsewhere.parquet"
    pl.DataFrame(
        {"problem_id": ["q0", "q1"], "question": ["ROW FROM ELSEWHERE"] * 2, "gold_answer": ["5"] * 2,
         "predicted_answer": ["5"] * 2, "correct": [True] * 2}
    ).write_parquet(secret)  # fmt: skip
    torn = sweep.cell_file("student-g1-seed1")
    torn.write_text(torn.read_text()[:60])
    tampered = sweep.cell_file("student-g3-seed1")
    named = "../elsewhere.parquet" if outside == "relative" else str(secret)
    tampered.write_text(json.dumps(json.loads(tampered.read_text()) | {"predictions": named}))
    result = CliRunner().invoke(app, ["sweep", "report", str(sweep.path)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f"not in the report: {torn}: torn or edited" in output
    assert f"{tampered}: predictions: '{named}' is not in the sweep folder" in output
    report = json.loads(sweep.report_json.read_text())
    assert [c["name"] for c in report["cells"]] == ["student-g5-seed1"]
    server = Viewer(sweep.path).start()
    try:
        status, page = server.get("/")
    finally:
        server.stop()
    assert status == 200 and "ROW FROM ELSEWHERE" not in page and "question q1" in page
    assert "is not in the sweep folder" in page and "torn or edited" in page


class KilledMidWrite(Exception):
    """What a kill does to a write: half the bytes reach the file, the rest never."""


def killed_writing(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Every write of a file whose name holds `name` (its temporary files included) stops half-way."""
    write_bytes = Path.write_bytes

    def half(self: Path, data: bytes) -> int:
        if name not in self.name:
            return write_bytes(self, data)
        write_bytes(self, data[: len(data) // 2])
        raise KilledMidWrite(self.name)

    monkeypatch.setattr(Path, "write_bytes", half)
    monkeypatch.setattr(Path, "write_text", lambda self, text, encoding=None: half(self, text.encode()))


def pretend_to_run(ran: list[str]):
    """run_cell without training: every held-out question answered right; the names of the cells it ran go to `ran`."""
    from cotforge.sweeps import CellResult

    def run_cell(job, log) -> CellResult:
        from cotforge.sweeps.files import write_model
        from cotforge.sweeps.layout import SweepDir

        cell, sweep, test = job.cell, SweepDir(job.sweep), job.test
        ran.append(cell.name)
        sweep.cell_dir(cell.name).mkdir(parents=True, exist_ok=True)
        predictions = sweep.cell_dir(cell.name) / "predictions.parquet"
        count = len(test)
        pl.DataFrame(
            {"problem_id": [p.id for p in test], "question": [p.question for p in test],
             "gold_answer": [p.answer for p in test], "predicted_answer": [p.answer for p in test],
             "correct": [True] * count}
        ).write_parquet(predictions)  # fmt: skip
        result = CellResult(
            name=cell.name, student=cell.student, arm=cell.arm.label, subset=cell.arm.subset, level=cell.arm.level,
            seed=cell.seed, steps=1, train_examples=1, completion_tokens=None, final_loss=None,
            mean_rationale_words=1.0, accuracy=1.0, interval=(1.0, 1.0), correct=count, total=count, parsed=count,
            train_wall_s=0.0, eval_wall_s=0.0, predictions=predictions.relative_to(sweep.path).as_posix(),
        )  # fmt: skip
        write_model(sweep.cell_file(cell.name), result)  # as the real one does, where the cell ran
        return result

    return run_cell


def test_a_torn_cell_is_run_again_and_sweep_files_are_never_torn(
    paper_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cotforge.sweeps import SweepSettings, build_report, cells, run_sweep
    from cotforge.sweeps.layout import SweepDir

    settings = SweepSettings(corpus=str(paper_build), students=["student"], levels=[1, 5], baselines=False)
    sweep = SweepDir(tmp_path / "sweep")
    ran: list[str] = []
    monkeypatch.setattr(cells, "run_cell", pretend_to_run(ran))
    _, unfinished = run_sweep(settings, sweep.path, log=lambda line: None)
    assert unfinished == [] and len(ran) == 2
    first, second = ran
    before = {path: path.read_bytes() for path in (sweep.settings_path, sweep.held_out_path)}
    torn = sweep.cell_file(first)
    torn.write_text(torn.read_text()[:80])
    lines: list[str] = []
    _, unfinished = run_sweep(settings, sweep.path, log=lines.append)
    assert unfinished == [] and ran == [first, second, first], "the torn cell is run again, the other kept"
    assert any(f"{first}: not finished: {torn}: torn or edited" in line for line in lines)
    assert [c.name for c in build_report(sweep.path).cells] == sorted([first, second])

    sweep.cell_file(second).unlink()  # so that a re-run writes it again
    for name in ("sweep.json", "held_out.json", "cell.json"):  # a kill while each is written
        with monkeypatch.context() as kill:
            killed_writing(kill, name)
            # a kill inside a cell (its cell.json) fails that cell alone: the sweep carries on, then says so
            with pytest.raises(cells.CellsFailed if name == "cell.json" else KilledMidWrite, match=name):
                run_sweep(settings, sweep.path, log=lambda line: None)
        assert {path: path.read_bytes() for path in before} == before, "the old files, whole"
    assert not sweep.cell_file(second).exists() and ran[-1] == second, "no torn cell.json left to be trusted"
    assert sorted(p.name for p in sweep.cell_dir(second).iterdir()) == ["predictions.parquet"]


@pytest.fixture
def hub():
    from .hub_server import LocalHub

    server = LocalHub().start()
    yield server
    server.stop()


def hub_repo(hub, repo_id: str, files: dict[str, bytes]) -> None:
    """A dataset repo put straight into the local Hub, as a hostile owner would have committed it."""
    import hashlib

    from .hub_server import Repo

    hub.repos[("dataset", repo_id)] = Repo("dataset", False, [(hashlib.sha1(repo_id.encode()).hexdigest(), files)])


def pull_in(hub, folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`cotforge pull ARGS` run in `folder` against the local Hub, with an empty cache."""
    from .test_hub import OFFLINE, hub_env

    code = OFFLINE + "import sys; from cotforge.entry import main; sys.argv = ['cotforge', *sys.argv[1:]]; main()"
    return subprocess.run(
        [sys.executable, "-c", code, "pull", *args],
        env=hub_env(hub, folder, token="hf_none"),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.integration
def test_pull_asks_the_hub_even_beside_a_local_folder_of_that_name(tmp_path: Path, hub, paper_build: Path) -> None:
    local = tmp_path / "me" / "good"
    local.mkdir(parents=True)
    shutil.copy(next((paper_build / "subsets").iterdir()), local / "local.parquet")
    result = pull_in(hub, tmp_path, "me/good", "--out", "pulled")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "me/good: no such dataset repo" in result.stderr and not (tmp_path / "pulled").exists()
    hub_repo(hub, "me/good", {"README.md": b"# good\n", "data/train.parquet": (local / "local.parquet").read_bytes()})
    (local / "local.parquet").unlink()
    (local / "other.parquet").write_bytes(b"not what the Hub holds")
    pulled = pull_in(hub, tmp_path, "me/good", "--out", "pulled")
    assert pulled.returncode == 0, pulled.stderr
    assert "pull of me/good" in (tmp_path / "pulled" / "build_report.json").read_text()


CARDS = {  # what the card's YAML header says, and what the error must name
    "config_name": ("configs:\n- config_name: ../../up\n  data_files: data/*.parquet\n", "configs[0].config_name"),
    "data_files outside": (
        "configs:\n- config_name: x\n  data_files:\n  - split: train\n    path: ../../../etc/*.parquet\n",
        "configs[0].data_files[0].path",
    ),
    "data_files over http": (
        "configs:\n- config_name: x\n  data_files: https://127.0.0.1:9/x.parquet\n",
        "configs[0].data_files",
    ),
    "python tag": ("configs: !!python/object/apply:os.system ['touch PWNED']\n", "YAML header: line 1"),
    "aliases": (yaml_bomb(9) + "\n", "YAML header: line 2, column 10: not valid YAML: the alias *a0 is refused"),
    "beside the card": ("", "configs[0].data_files"),  # .huggingface.yaml, which `datasets` reads with the card
}


@pytest.mark.integration
@pytest.mark.parametrize("kind", CARDS)
def test_a_hostile_repo_card_is_bad_input_naming_the_file_and_field(tmp_path: Path, hub, kind: str) -> None:
    header, field = CARDS[kind]
    data = io.BytesIO()
    pl.DataFrame({"question": ["q"]}).write_parquet(data)
    files = {"README.md": f"---\n{header}---\n# bad\n".encode(), "data/x.parquet": data.getvalue()}
    if kind == "beside the card":
        files[".huggingface.yaml"] = b"configs:\n- config_name: x\n  data_files: http://127.0.0.1:9/x.parquet\n"
    hub_repo(hub, "me/bad", files)
    result = pull_in(hub, tmp_path, "me/bad", "--out", "pulled")
    assert result.returncode == 2, result.stderr
    stderr = " ".join(result.stderr.split())
    named = ".huggingface.yaml" if kind == "beside the card" else "README.md"
    assert f"me/bad: {named}: {field}" in stderr and "nothing was pulled" in stderr
    assert "network failure" not in stderr and "Traceback" not in stderr
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "pulled").exists()
