"""The structure of a List of Waste code (decision 2000/532/EC): chapter, sub-chapter, entry, hazard.

Only the structure is read here; the list itself (labels, categories) ships with the flow
inventory. ``15 01 01`` is chapter 15, sub-chapter 15 01, entry 15 01 01; a ``*`` marks a
hazardous entry (``16 06 01*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CODE = re.compile(r"^\s*(\d{2})\s*(\d{2})\s*(\d{2})\s*(\*?)\s*$")


class WasteCodeError(ValueError):
    """A text that is not a List of Waste code; the message is in French for staff."""


@dataclass(frozen=True, order=True)
class WasteCode:
    """A six-digit List of Waste entry and whether it is hazardous."""

    code: str
    hazardous: bool = False

    @property
    def chapter(self) -> str:
        """The two-digit chapter (``15``: packaging waste…)."""
        return self.code[:2]

    @property
    def sub_chapter(self) -> str:
        """The four-digit sub-chapter (``1501``: packaging)."""
        return self.code[:4]

    def __str__(self) -> str:
        return f"{self.code[:2]} {self.code[2:4]} {self.code[4:]}{'*' if self.hazardous else ''}"


def parse_waste_code(text: str) -> WasteCode:
    """Return the code written ``150101``, ``15 01 01`` or ``16 06 01*``, or refuse it in French."""
    match = _CODE.match(text)
    if not match:
        raise WasteCodeError(
            f"« {text} » n'est pas un code de la liste européenne des déchets "
            "(six chiffres, par exemple 15 01 01, suivis de * s'il est dangereux)"
        )
    chapter, sub, entry, star = match.groups()
    if chapter == "00" or int(chapter) > 20:
        raise WasteCodeError(f"« {text} » : la liste des déchets n'a pas de chapitre {chapter}")
    return WasteCode(chapter + sub + entry, hazardous=bool(star))


def closeness(a: WasteCode, b: WasteCode) -> int:
    """How many leading code levels two codes share: 3 (same entry), 2 (sub-chapter), 1 (chapter), 0."""
    if a.code == b.code:
        return 3
    if a.sub_chapter == b.sub_chapter:
        return 2
    if a.chapter == b.chapter:
        return 1
    return 0
