"""The schema: report generations (inspection programmes) and the quality framework, as data.

Each ``generations/*.yaml`` file describes one programme: how to recognise
its title, its section and subsection headings, and its grade table. Supporting
another programme means adding a file, not changing the segmenter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent / "generations"
FLAGS = re.IGNORECASE


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    part: str | None = None
    kind: str | None = None
    within: tuple[str, ...] = ()
    numbered: bool = False
    items_only: bool = False

    def match(self, text: str) -> re.Match[str] | None:
        return self.pattern.match(text)


@dataclass(frozen=True)
class Generation:
    id: str
    programme: str
    title: re.Pattern[str]
    sections: tuple[Rule, ...]
    subsections: tuple[Rule, ...]
    body_kind: dict[str, str]
    scale: tuple[str, ...]
    indicators: dict[str, re.Pattern[str]]
    required: tuple[str, ...]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def section_for(self, text: str) -> tuple[Rule, re.Match[str]] | None:
        for rule in self.sections:
            match = rule.match(text)
            if match:
                return rule, match
        return None

    def subsection_for(self, text: str, part: str) -> Rule | None:
        for rule in self.subsections:
            if part in rule.within and rule.match(text):
                return rule
        return None


def _rule(spec: dict[str, Any]) -> Rule:
    return Rule(
        pattern=re.compile(spec["pattern"], FLAGS),
        part=spec.get("part"),
        kind=spec.get("kind"),
        within=tuple(spec.get("within", ())),
        numbered=bool(spec.get("numbered", False)),
        items_only=bool(spec.get("items_only", False)),
    )


def parse_generation(spec: dict[str, Any]) -> Generation:
    grades = spec["grades"]
    return Generation(
        id=spec["id"],
        programme=spec["programme"],
        title=re.compile(spec["title"], FLAGS),
        sections=tuple(_rule(s) for s in spec["sections"]),
        subsections=tuple(_rule(s) for s in spec.get("subsections", [])),
        body_kind=dict(spec["body_kind"]),
        scale=tuple(grades["scale"]),
        indicators={code: re.compile(p, FLAGS) for code, p in grades["indicators"].items()},
        required=tuple(grades.get("required", grades["indicators"].keys())),
        raw=spec,
    )


@lru_cache(maxsize=1)
def load_generations() -> tuple[Generation, ...]:
    return tuple(
        parse_generation(yaml.safe_load(path.read_text(encoding="utf-8")))
        for path in sorted(HERE.glob("*.yaml"))
    )



@dataclass(frozen=True)
class Framework:
    """The quality framework labels, classifiers and comparisons speak in.

    ``indicators`` maps each QI code to its short title, in the framework's order;
    ``scale`` runs from worst to best (1 = Unsatisfactory ... 6 = Excellent);
    ``graded`` maps each graded indicator to its title and the classified QIs that
    speak to it.
    """

    indicators: dict[str, str]
    no_indicator: str
    sentiments: tuple[str, ...]
    scale: tuple[str, ...]
    graded: dict[str, dict[str, Any]]

    @property
    def qi_codes(self) -> tuple[str, ...]:
        return (*self.indicators, self.no_indicator)

    def title(self, code: str) -> str:
        graded = self.graded.get(code)
        return graded["title"] if graded else self.indicators.get(code, code)


def parse_framework(generation: Generation) -> Framework | None:
    spec = generation.raw.get("framework")
    if not spec:
        return None
    graded = generation.raw["grades"].get("graded") or {}
    return Framework(
        indicators={str(k): str(v) for k, v in spec["indicators"].items()},
        no_indicator=str(spec.get("no_indicator", "none")),
        sentiments=tuple(spec["sentiments"]),
        scale=tuple(reversed(generation.scale)),
        graded={str(k): {"title": str(v["title"]), "qis": [str(q) for q in v["qis"]]}
                for k, v in graded.items()},
    )


@lru_cache(maxsize=1)
def framework() -> Framework:
    """The framework of the first generation that declares one (the labels' framework)."""
    for generation in load_generations():
        found = parse_framework(generation)
        if found is not None:
            return found
    raise RuntimeError("no generation file declares a framework")  # a packaging error


FRAMEWORK = framework()
QI_CODES: tuple[str, ...] = FRAMEWORK.qi_codes
QI_TITLES: dict[str, str] = dict(FRAMEWORK.indicators)
SENTIMENTS: tuple[str, ...] = FRAMEWORK.sentiments
SCALE: tuple[str, ...] = FRAMEWORK.scale  # worst to best
GRADE_QIS: dict[str, list[str]] = {code: g["qis"] for code, g in FRAMEWORK.graded.items()}


def qi_area(code: str) -> str:
    """The number before the dot (``"5.2"`` -> ``"5"``); ``none`` is its own area."""
    return code.split(".", 1)[0]
