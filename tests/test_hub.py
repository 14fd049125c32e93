"""Publish and pull through the real huggingface_hub and datasets clients, against a local Hub on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cotforge.corpus import BuildDir

from .helpers import scripted_recipe, write_problems
from .hub_server import LocalHub
from .test_build import build

TOKEN = "hf_cotforge_test_token_0123456789"
pytestmark = pytest.mark.integration


@pytest.fixture
def hub():
    server = LocalHub(token=TOKEN, forbidden_token="hf_read_only_token").start()
    yield server
    server.stop()


def hub_env(hub: LocalHub, tmp_path: Path, token: str = TOKEN) -> dict[str, str]:
    """The clients read these at import, so every Hub call runs in a fresh process with an empty cache."""
    return {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_TOKEN": token,
        "HF_HOME": str(tmp_path / f"hf-home-{len(list(tmp_path.glob('hf-home-*')))}"),
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


# No datasets-server lookups (parquet export) from the tests: nothing leaves the machine.
OFFLINE = "import datasets; datasets.config.USE_PARQUET_EXPORT = False\n"


def cotforge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    code = OFFLINE + "import sys; from cotforge.entry import main; sys.argv = ['cotforge', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)


def python(env: dict[str, str], code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE + code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def commit_frame(env: dict[str, str], tmp_path: Path, path: str, frame) -> None:
    """Replace one Parquet file of the Hub repo me/cot with `frame` (written to tmp_path/bad.parquet)."""
    frame.write_parquet(tmp_path / "bad.parquet")
    python(
        env,
        f"""
from huggingface_hub import HfApi, CommitOperationAdd
HfApi().create_commit("me/cot", [CommitOperationAdd("{path}", "{tmp_path / "bad.parquet"}")],
                      commit_message="corrupt", repo_type="dataset")
""",
    )


@pytest.fixture
def small_build(tmp_path: Path, scripted) -> Path:
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(5)] + ["bad fault=length"])
    build(scripted_recipe(problems, scripted.url, granularities=[1, 4]), tmp_path / "build")
    return tmp_path / "build"


def test_round_trip_push_then_load_dataset_in_a_fresh_process(tmp_path: Path, hub, small_build: Path) -> None:
    result = cotforge(hub_env(hub, tmp_path), "push", str(small_build), "me/cot", "--rejected")
    assert result.returncode == 0, result.stderr
    local = {
        name: [json.loads(r.model_dump_json()) for r in rows]
        for name, rows in BuildDir(small_build).read_subsets().items()
    }
    assert set(local) == {"scripted-g1-cot", "scripted-g4-cot"}
    for name, expected in local.items():
        loaded = python(
            hub_env(hub, tmp_path),
            f"""
import json
from datasets import load_dataset
from cotforge.schemas import CoTRecord
rows = load_dataset("me/cot", "{name}", split="train")
print(json.dumps([json.loads(CoTRecord.model_validate(row).model_dump_json()) for row in rows]))
""",
        )
        assert json.loads(loaded.strip().splitlines()[-1]) == expected
    rejected = python(
        hub_env(hub, tmp_path),
        "from datasets import load_dataset\nprint(load_dataset('me/cot', 'rejected', split='train')[0]['reason'])",
    )
    assert rejected.strip().splitlines()[-1] == "truncated"


def test_card_metadata_points_at_committed_files(tmp_path: Path, hub, small_build: Path) -> None:
    assert cotforge(hub_env(hub, tmp_path), "push", str(small_build), "me/cot").returncode == 0
    files = hub.files("me/cot")
    card_path = tmp_path / "README.md"
    card_path.write_bytes(files["README.md"])
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(card_path)
    data = card.data.to_dict()
    assert data["annotations_creators"] == ["machine-generated"]
    assert {"synthetic", "chain-of-thought"} <= set(data["tags"])
    assert data["size_categories"] == ["n<1K"] and data["license"] == "other"
    for config in data["configs"]:
        for entry in config["data_files"]:
            prefix = entry["path"].removesuffix("*.parquet")
            assert any(path.startswith(prefix) for path in files), entry
    assert "assets/length_by_level.png" in files and files["assets/length_by_level.png"][:4] == b"\x89PNG"
    assert "assets/length_by_level.png" in card.text and 'load_dataset("me/cot"' in card.text
    assert "cotforge train" in card.text and "SFTTrainer" in card.text and "2502.18001" in card.text
    assert yaml.safe_load(files["recipe.yaml"])["granularities"] == [1, 4]
    assert json.loads(files["build_report.json"])["accepted"] == 11  # the fault hits the first of its two prompts
    assert TOKEN.encode() not in b"".join(files.values())


def test_repush_makes_no_commit(tmp_path: Path, hub, small_build: Path) -> None:
    assert cotforge(hub_env(hub, tmp_path), "push", str(small_build), "me/cot").returncode == 0
    head = hub.head("me/cot")
    again = cotforge(hub_env(hub, tmp_path), "push", str(small_build), "me/cot")
    assert again.returncode == 0 and "no new commit" in again.stdout
    assert hub.head("me/cot") == head
    assert not [r for r in hub.requests if r[0] == "POST" and "/commit/" in r[1]][1:], "one commit in all"


def test_failed_commit_leaves_the_remote_unchanged(tmp_path: Path, hub, scripted, small_build: Path) -> None:
    assert cotforge(hub_env(hub, tmp_path), "push", str(small_build), "me/cot").returncode == 0
    head, before = hub.head("me/cot"), hub.files("me/cot")
    # A second build with a subset the remote lacks: the failed commit would have added files and merged the card.
    more = build(scripted_recipe(tmp_path / "p.jsonl", scripted.url, granularities=[6]), tmp_path / "more")
    assert more.accepted > 0
    hub.fail_next_commit = True
    result = cotforge(hub_env(hub, tmp_path), "push", str(tmp_path / "more"), "me/cot")
    assert result.returncode == 1
    assert "nothing was committed" in result.stderr and "HTTP 500" in result.stderr
    assert hub.head("me/cot") == head and hub.files("me/cot") == before


def test_adding_a_subset_keeps_the_others_and_merges_configs(tmp_path: Path, hub, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["a answer=5", "b answer=5"])
    build(scripted_recipe(problems, scripted.url, granularities=[2]), tmp_path / "one")
    build(scripted_recipe(problems, scripted.url, granularities=[6]), tmp_path / "two")
    env = hub_env(hub, tmp_path)
    assert cotforge(env, "push", str(tmp_path / "one"), "me/grid").returncode == 0
    assert cotforge(env, "push", str(tmp_path / "two"), "me/grid").returncode == 0
    files = hub.files("me/grid")
    assert any(p.startswith("data/scripted-g2-cot/") for p in files)
    assert any(p.startswith("data/scripted-g6-cot/") for p in files)
    front = files["README.md"].decode().split("---")[1]
    assert [c["config_name"] for c in yaml.safe_load(front)["configs"]] == ["scripted-g2-cot", "scripted-g6-cot"]
    stats = json.loads(files["cotforge_stats.json"])
    assert set(stats) == {"scripted-g2-cot", "scripted-g6-cot"}


def test_auth_and_missing_repo_errors(tmp_path: Path, hub, small_build: Path) -> None:
    bad = cotforge(hub_env(hub, tmp_path, token="hf_wrong"), "push", str(small_build), "me/cot")
    assert bad.returncode == 1 and "HTTP 401" in bad.stderr and "hf_wrong" not in bad.stderr
    read_only = cotforge(hub_env(hub, tmp_path, token="hf_read_only_token"), "push", str(small_build), "me/cot")
    assert read_only.returncode == 1 and "HTTP 403" in read_only.stderr
    missing = cotforge(hub_env(hub, tmp_path), "pull", "me/nothing-here", "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "me/nothing-here: no such dataset repo" in missing.stderr
    malformed = cotforge(hub_env(hub, tmp_path), "push", str(small_build), "not a repo!")
    assert malformed.returncode == 2 and "is not a repo id" in malformed.stderr
    assert "Traceback" not in bad.stderr + read_only.stderr + missing.stderr + malformed.stderr
    assert not (tmp_path / "o").exists()


def test_push_validates_every_file_before_sending_anything(tmp_path: Path, hub, small_build: Path) -> None:
    env = hub_env(hub, tmp_path)
    part = small_build / "subsets" / "scripted-g1-cot.parquet"
    good = part.read_bytes()
    part.write_bytes(good[: len(good) // 2])
    result = cotforge(env, "push", str(small_build), "me/cot")
    assert result.returncode == 2 and "scripted-g1-cot.parquet: not a readable Parquet file" in result.stderr
    part.write_bytes(good)
    (small_build / "build_report.json").write_text("{not json")
    result = cotforge(env, "push", str(small_build), "me/cot")
    assert result.returncode == 2 and "build_report.json: not a valid build report" in result.stderr
    assert ("dataset", "me/cot") not in hub.repos, "nothing was sent"
    assert "Traceback" not in result.stderr


def test_incomplete_build_is_pushed_only_when_allowed_and_the_card_says_so(tmp_path: Path, hub, scripted) -> None:
    questions = [f"q{i} answer=5" for i in range(4)] + ["down answer=5 fault=500,500,500,500,500"]
    problems = write_problems(tmp_path / "p.jsonl", questions)
    report = build(scripted_recipe(problems, scripted.url), tmp_path / "build")
    assert report.failed == 1
    env = hub_env(hub, tmp_path)
    refused = cotforge(env, "push", str(tmp_path / "build"), "me/cot")
    assert refused.returncode == 2 and "--allow-incomplete" in refused.stderr
    assert ("dataset", "me/cot") not in hub.repos
    allowed = cotforge(env, "push", str(tmp_path / "build"), "me/cot", "--allow-incomplete")
    assert allowed.returncode == 0, allowed.stderr
    card = hub.files("me/cot")["README.md"].decode()
    assert "**Incomplete build:** 1 of 5 requested answers were not answered" in card


def test_card_of_a_top_up_build_gives_its_coverage(tmp_path: Path, hub, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["a answers=3,5", "b answers=5", "c answers=3"])
    recipe = scripted_recipe(problems, scripted.url, until_correct=1, max_attempts=2, keep="correct")
    build(recipe, tmp_path / "build")
    pushed = cotforge(hub_env(hub, tmp_path), "push", str(tmp_path / "build"), "me/cot")
    assert pushed.returncode == 0, pushed.stderr
    card = hub.files("me/cot")["README.md"].decode()
    assert (
        "of 3 prompts, 2 reached 1 correct, 2 at least one, 1 none; attempts per prompt: 1 after 1, 2 after 2" in card
    )


def test_pull_of_the_rejected_subset_says_what_it_saved(tmp_path: Path, hub, small_build: Path) -> None:
    env = hub_env(hub, tmp_path)
    assert cotforge(env, "push", str(small_build), "me/cot", "--rejected").returncode == 0
    result = cotforge(env, "pull", "me/cot", "--subset", "rejected", "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    assert "rejected: 1 rejections" in result.stdout and "saved 0 records and 1 rejections" in result.stdout


def test_pull_validates_rows_and_writes_a_build_dir(tmp_path: Path, hub, small_build: Path) -> None:
    env = hub_env(hub, tmp_path)
    assert cotforge(env, "push", str(small_build), "me/cot").returncode == 0
    # Corrupt one row on the Hub: a granularity outside 0..6.
    import polars as pl

    path = next(p for p in hub.files("me/cot") if p.startswith("data/scripted-g1-cot/"))
    frame = pl.read_parquet(hub.files("me/cot")[path])
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(9).otherwise(pl.col("granularity")).cast(pl.Int8).alias("granularity")
    )
    commit_frame(env, tmp_path, path, bad)
    result = cotforge(env, "pull", "me/cot", "--subset", "scripted-g1-cot", "--out", str(tmp_path / "pulled"))
    assert result.returncode == 0, result.stderr
    assert "4 records" in result.stdout and "1 rows not valid" in result.stdout and "granularity" in result.stdout
    assert [len(v) for v in BuildDir(tmp_path / "pulled").read_subsets().values()] == [4]
    revision = cotforge(
        env,
        "pull",
        "me/cot",
        "--revision",
        hub.repos[("dataset", "me/cot")].commits[-2][0],
        "--out",
        str(tmp_path / "before"),
    )
    assert revision.returncode == 0 and "scripted-g1-cot: 5 records" in revision.stdout


def test_pull_python_api_gives_typed_records_and_polars(tmp_path: Path, hub, small_build: Path) -> None:
    env = hub_env(hub, tmp_path)
    assert cotforge(env, "push", str(small_build), "me/cot").returncode == 0
    out = python(
        env,
        """
from cotforge.hub_pull import pull
got = pull("me/cot")
print(sorted(got), type(got["scripted-g4-cot"].records[0]).__name__, got["scripted-g4-cot"].to_polars().height)
""",
    )
    assert out.strip().splitlines()[-1] == "['scripted-g1-cot', 'scripted-g4-cot'] CoTRecord 6"  # 5 + the retried fault


def test_train_a_student_from_the_published_dataset(tmp_path: Path, hub, small_build: Path) -> None:
    from .students import tiny_student

    env = hub_env(hub, tmp_path)
    assert cotforge(env, "push", str(small_build), "me/cot").returncode == 0
    student = tiny_student(tmp_path / "tiny")
    result = cotforge(
        env,
        "train",
        "--dataset",
        "me/cot",
        "--subset",
        "scripted-g4-cot",
        "--model",
        str(student),
        "--out",
        str(tmp_path / "student"),
        "--max-steps",
        "2",
        "--max-length",
        "128",
        "--micro-batch-size",
        "2",
        "--global-batch-size",
        "2",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "student" / "train_report.json").read_text())
    assert report["steps"] == 2 and report["truncation"]["examples"] == 6
    assert report["config"]["dataset"] == "me/cot"


def _runnable_part(snippet: str) -> str:
    """The snippet's statements that need no trainer package (TRL is not installed here): imports of trl and the
    statements calling it are left out; everything else, the data loading included, runs as written."""
    import ast

    kept = [
        node
        for node in ast.parse(snippet).body
        if not (isinstance(node, ast.ImportFrom) and node.module == "trl") and "SFT" not in ast.unparse(node)
    ]
    return "\n".join(ast.unparse(node) for node in kept)


def test_every_card_snippet_runs(tmp_path: Path, hub, small_build: Path) -> None:
    import re

    assert cotforge(hub_env(hub, tmp_path), "push", str(small_build), "me/cot").returncode == 0
    card = hub.files("me/cot")["README.md"].decode()
    snippets = re.findall(r"```python\n(.*?)```", card, re.DOTALL)
    assert len(snippets) == 2 and "completion_only_loss=True" in snippets[1]
    for snippet in snippets:
        code = _runnable_part(snippet)
        assert "load_dataset(" in code
        names = "ds" if "ds =" in code else "train"
        output = python(hub_env(hub, tmp_path), code + f"\nprint('COLUMNS', sorted({names}.column_names))")
        columns = output.strip().splitlines()[-1]
        assert "'completion'" in columns and "'prompt'" in columns
    # with no subset named, the card's default config loads
    default = python(hub_env(hub, tmp_path), "from datasets import load_dataset\nprint(len(load_dataset('me/cot')))")
    assert default.strip().splitlines()[-1] == "1"


def test_card_licence_and_contamination(tmp_path: Path, hub, small_build: Path) -> None:
    from huggingface_hub import DatasetCard

    result = cotforge(hub_env(hub, tmp_path), "push", str(small_build), "me/cot")
    assert result.returncode == 0, result.stderr
    files = hub.files("me/cot")
    card_path = tmp_path / "README.md"
    card_path.write_bytes(files["README.md"])
    card = DatasetCard.load(card_path)
    data = card.data.to_dict()
    assert data["license"] == "other" and data["license_name"] and data["license_link"] == "LICENSE.md"
    assert "LICENSE.md" in files and b"user's data" in files["LICENSE.md"]
    assert data["configs"][0]["default"] is True
    assert "## Contamination" in card.text and "not checked" in card.text.lower()  # user data: nothing to check
    assert "temperature=" in card.text and "max_tokens=" in card.text


def test_the_model_card_states_base_data_settings_accuracy_and_the_loss_curve(tmp_path: Path) -> None:
    from cotforge.corpus import EvalDir, StudentDir
    from cotforge.dataset_cards.model_card import render_model_card

    config = {"model": "base/m", "dataset": "me/cot", "subset": "g5", "learning_rate": 1e-4, "output_dir": "x"}
    card = render_model_card(
        "me/s", config, steps=3, examples=10, final_loss=0.5, accuracy={"svamp": 0.25}, loss_curve="loss_curve.png"
    )
    assert "base_model: base/m" in card and "- me/cot" in card and "(subset `g5`)" in card
    assert "| `learning_rate` | `0.0001` |" in card and "output_dir" not in card
    assert "| svamp | 25.0% |" in card and "![Training loss by optimizer step](loss_curve.png)" in card
    unevaluated = render_model_card("me/s", config, steps=3, examples=10, final_loss=None)
    assert "Not evaluated yet" in unevaluated and "![" not in unevaluated
    # The push reads what `cotforge eval --out` left in the student's folder.
    student = StudentDir(tmp_path)
    student.write_train_report({"config": config, "steps": 3, "examples": 10, "history": [{"step": 3, "loss": 0.5}]})
    EvalDir(tmp_path).report_path.write_text(json.dumps({"accuracy": {"svamp": 0.5}}))
    pushed: dict = {}

    def push_model(folder: Path, repo_id: str, *, ignore: list[str]) -> str:
        pushed.update(folder=folder, repo_id=repo_id, ignore=ignore, card=(folder / "README.md").read_text())
        return "abc"

    import cotforge.hub
    from cotforge.train.publish import push_student

    original = cotforge.hub.push_model
    cotforge.hub.push_model = push_model
    try:
        assert push_student(student, "me/s") == "abc"
    finally:
        cotforge.hub.push_model = original
    assert "| svamp | 50.0% |" in pushed["card"] and pushed["ignore"] == ["checkpoints/*", "tokenized/*"]


# ---- issue 27: a hostile repo, an existing folder, a wrong token --------------------------------------------------


def test_a_hostile_repo_cannot_write_outside_the_pull_folder(tmp_path: Path, hub, small_build: Path) -> None:
    import polars as pl

    env = hub_env(hub, tmp_path)
    assert cotforge(env, "push", str(small_build), "me/cot").returncode == 0
    path = next(p for p in hub.files("me/cot") if p.startswith("data/scripted-g1-cot/"))
    frame = pl.read_parquet(hub.files("me/cot")[path])
    hostile = ["../../../../outside/x", str(tmp_path / "abs"), "a/b", "x" * 300]
    frame = frame.with_columns(
        pl.Series("teacher", hostile + frame["teacher"].to_list()[len(hostile) :]),
        pl.Series("dataset", ["../up", *frame["dataset"].to_list()[1:]]),
    )
    commit_frame(env, tmp_path, path, frame)
    out = tmp_path / "deep" / "a" / "b" / "pulled"
    result = cotforge(env, "pull", "me/cot", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "4 rows not valid" in result.stdout and "cannot be a file name" in result.stdout
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet")}
    expected = ("deep/a/b/pulled/", "bad.parquet", "build/", "hf-home")  # the pull, the test's own files, the cache
    assert all(p.startswith(expected) for p in written), written
    assert not (tmp_path / "outside").exists() and not (tmp_path / "abs.parquet").exists()


def test_pull_refuses_a_non_empty_folder_unless_overwrite_and_checks_the_subset(
    tmp_path: Path, hub, small_build: Path
) -> None:
    env = hub_env(hub, tmp_path)
    assert cotforge(env, "push", str(small_build), "me/cot").returncode == 0
    out = tmp_path / "corpus"
    shutil_copy = __import__("shutil").copytree
    shutil_copy(small_build, out)
    before = sorted(p.name for p in (out / "subsets").iterdir())
    refused = cotforge(env, "pull", "me/cot", "--subset", "scripted-g1-cot", "--out", str(out))
    assert refused.returncode == 2 and "is not empty" in refused.stderr and "--overwrite" in refused.stderr
    assert sorted(p.name for p in (out / "subsets").iterdir()) == before
    unsafe = cotforge(env, "pull", "me/cot", "--subset", "../../x", "--out", str(tmp_path / "n"))
    assert unsafe.returncode == 2 and "--subset: '../../x' cannot be a file name" in unsafe.stderr
    missing = cotforge(env, "pull", "me/cot", "--subset", "nope", "--out", str(tmp_path / "n"))
    assert missing.returncode == 2 and "no subset nope; it has scripted-g1-cot, scripted-g4-cot" in missing.stderr
    assert "Traceback" not in refused.stderr + unsafe.stderr + missing.stderr
    replaced = cotforge(env, "pull", "me/cot", "--subset", "scripted-g1-cot", "--out", str(out), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert [p.name for p in (out / "subsets").iterdir()] == ["scripted-g1-cot.parquet"]
    assert not (out / "store.sqlite").exists(), "the folder is the pulled corpus, nothing of the old one"
    report = json.loads((out / "build_report.json").read_text())
    assert report["subsets"] == {"scripted-g1-cot": 5} and report["recipe"] == "pull of me/cot"


def test_a_wrong_token_for_train_push_is_found_before_training(tmp_path: Path, hub) -> None:
    import polars as pl

    data = tmp_path / "d.parquet"
    pl.DataFrame({"prompt": ["q"], "completion": ["a"]}).write_parquet(data)
    env = hub_env(hub, tmp_path, token="hf_wrong")
    args = ["train", "--dataset", str(data), "--model", str(tmp_path / "no-model"), "--push-to-hub", "me/student"]
    result = cotforge(env, *args)
    assert result.returncode == 1 and "HTTP 401" in result.stderr and "hf_wrong" not in result.stderr
    assert "no-model" not in result.stderr, "refused before the model (or anything else) loads"
    assert "Traceback" not in result.stderr
