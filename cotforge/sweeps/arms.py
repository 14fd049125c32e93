"""Arms named on the command line (`--arm`): a teacher's prompted level, its native trace, a condensed level, a
baseline, or a weighted mixture of those. Each name resolves to one subset of the corpus; a mixture gives each
problem the rationale of one of its parts, in the weights' shares.

    g3                       the teacher's prompted level 3 (in the sweep's format, default cot)
    native                   the teacher's own reasoning trace (<teacher>-native-cot)
    condensed-g3             that trace rewritten at level 3 (<teacher>-condensed-g3-cot)
    answer-only, human       the paper's baselines
    native:0.5+g3:0.5        a mixture; weights are optional (native+g3: equal shares)
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cotforge.schemas.recipe import FormatMode
from cotforge.schemas.record import CoTRecord, subset_name
from cotforge.sweeps.settings import SweepError
from cotforge.train.config import weight_shares

ARM_SYNTAX = "g<level>, native, condensed-g<level>, answer-only, human, or a mixture such as native:0.5+g3:0.5"
_PART = re.compile(r"^(?P<name>g[0-6]|native|condensed-g[1-6]|answer-only|human)(?::(?P<weight>[^:+]+))?$")
BASELINE_SUBSETS = {"answer-only": "answer-only-g0", "human": "human"}  # + "-<format>"


@dataclass(frozen=True)
class ArmSpec:
    """One `--arm`: its parts (name, weight), one part for a plain arm."""

    text: str
    parts: tuple[tuple[str, float], ...]

    @property
    def label(self) -> str:
        """The arm's name in cell folders and the report: the text, with ':' as '-' (a file name)."""
        return self.text.replace(":", "-")

    @property
    def kind(self) -> str:
        """prompted, native, condensed, baseline or mixture."""
        if len(self.parts) > 1:
            return "mixture"
        name = self.parts[0][0]
        if name in BASELINE_SUBSETS:
            return "baseline"
        return "prompted" if name.startswith("g") else name.split("-")[0]

    @property
    def level(self) -> int | None:
        """Where the arm sits on the prompted granularity axis: prompted levels and answer-only only (a condensed
        level is made from a trace, so it is compared apart, as native traces and mixtures are)."""
        if self.kind == "prompted":
            return int(self.parts[0][0][1:])
        return 0 if self.parts[0][0] == "answer-only" and len(self.parts) == 1 else None


def parse_arm(text: str) -> ArmSpec:
    """An `--arm` value, or a SweepError naming it and the syntax."""
    parts: list[tuple[str, float]] = []
    pieces = text.split("+")
    for piece in pieces:
        found = _PART.match(piece.strip())
        if found is None:
            raise SweepError(f"--arm {text}: {piece.strip() or 'an empty part'!r} is not an arm; give {ARM_SYNTAX}")
        weight = 1.0
        if found["weight"] is not None:
            try:
                weight = float(found["weight"])
            except ValueError:
                weight = math.nan
        elif len(pieces) > 1 and any(":" in p for p in pieces):
            raise SweepError(f"--arm {text}: give every part of a mixture a weight, or none (equal shares)")
        parts.append((found["name"], weight))
    names = [name for name, _ in parts]
    if len(set(names)) != len(names):
        raise SweepError(f"--arm {text}: a mixture names each part once")
    try:
        shares = weight_shares(dict(parts))
    except ValueError as error:
        raise SweepError(f"--arm {text}: {error}") from None
    return ArmSpec(text.replace(" ", ""), tuple(shares.items()))


def part_subset(name: str, teacher: str, fmt: str) -> str:
    """The subset an arm part names."""
    if name in BASELINE_SUBSETS:
        return f"{BASELINE_SUBSETS[name]}-{fmt}"
    if name == "native":
        return subset_name(teacher, None, "cot", format_mode=FormatMode.native)
    if name.startswith("condensed-g"):
        return subset_name(teacher, int(name.rsplit("g", 1)[1]), "cot", format_mode=FormatMode.condensed)
    return subset_name(teacher, int(name[1:]), fmt)


def arm_subsets(spec: ArmSpec, teacher: str, fmt: str, subsets: Mapping[str, object]) -> dict[str, float]:
    """subset -> share for each part of `spec`, or a SweepError naming the arm and the subset it lacks."""
    found = {part_subset(name, teacher, fmt): weight for name, weight in spec.parts}
    missing = [subset for subset in found if subset not in subsets]
    if missing:
        raise SweepError(
            f"--arm {spec.text}: the corpus has no subset {', '.join(missing)} (teacher {teacher}, format {fmt}; "
            f"its subsets: {', '.join(sorted(subsets))})"
        )
    return found


def mixed_rows(parts: dict[str, dict[str, CoTRecord]], shares: dict[str, float]) -> dict[str, CoTRecord]:
    """One rationale per problem that every part answers: the problems, in an order fixed by their ids, are dealt
    to the parts in the shares given (a remainder to the largest shares), so the mixture keeps the sweep's rule of
    one example per problem."""
    common = sorted(
        set.intersection(*(set(rows) for rows in parts.values())),
        key=lambda i: hashlib.sha256(f"mixture:{i}".encode()).hexdigest(),
    )
    counts = {subset: math.floor(share * len(common)) for subset, share in shares.items()}
    for subset in sorted(shares, key=lambda s: -shares[s])[: len(common) - sum(counts.values())]:
        counts[subset] += 1
    rows: dict[str, CoTRecord] = {}
    start = 0
    for subset, count in counts.items():
        for problem_id in common[start : start + count]:
            rows[problem_id] = parts[subset][problem_id]
        start += count
    return rows
