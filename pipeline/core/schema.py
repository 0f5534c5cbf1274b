"""Report generations (inspection programmes) described as data.

Each ``*.yaml`` file beside this module describes one programme: how to recognise
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


# --- the quality framework (moved here; to be read from the generation data) ---
QI_CODES: tuple[str, ...] = (
    "1.1", "2.1", "2.2", "3.1", "4.1", "5.1", "5.2", "5.3", "5.4", "6.1", "6.2",
    "6.3", "6.4", "7.1", "8.1", "9.1", "9.2", "9.3", "9.4", "10.1", "none",
)
SENTIMENTS: tuple[str, ...] = ("positive", "negative", "mixed", "neutral")


def qi_area(code: str) -> str:
    """The number before the dot (``"5.2"`` -> ``"5"``); ``none`` is its own area."""
    return code.split(".", 1)[0]
