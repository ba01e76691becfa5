"""Every French label dict names each member of its enum, and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pytest

from models import enums, inventory
from synergie.calls.lists import OUTCOME_LABELS_FR

LABELS: list[tuple[Mapping[Any, str], type[StrEnum]]] = [
    (enums.STAGE_LABELS_FR, enums.Stage),
    (enums.CHANNEL_LABELS_FR, enums.Channel),
    (enums.MESSAGE_STATUS_LABELS_FR, enums.MessageStatus),
    (enums.VISIT_STATUS_LABELS_FR, enums.VisitStatus),
    (enums.PARTSTAT_LABELS_FR, enums.Partstat),
    (enums.ANSWER_LABELS_FR, enums.Answer),
    (enums.SYNERGY_STATUS_LABELS_FR, enums.SynergyStatus),
    (enums.SYNERGY_KIND_LABELS_FR, enums.SynergyKind),
    (enums.PARTY_ROLE_LABELS_FR, enums.PartyRole),
    (enums.UPLOAD_STATUS_LABELS_FR, enums.UploadStatus),
    (inventory.DIRECTION_LABELS_FR, inventory.Direction),
    (inventory.FREQUENCY_LABELS_FR, inventory.Frequency),
    (inventory.MONEY_KIND_LABELS_FR, inventory.MoneyKind),
    (inventory.FLOW_ORIGIN_LABELS_FR, inventory.FlowOrigin),
    (OUTCOME_LABELS_FR, enums.CallOutcome),
]


@pytest.mark.parametrize(("labels", "enum"), LABELS, ids=[e.__name__ for _, e in LABELS])
def test_labels_cover_their_enum_exactly(labels: Mapping[Any, str], enum: type[StrEnum]) -> None:
    assert set(labels) == set(enum)
    assert all(isinstance(key, enum) for key in labels)  # a plain string key would hide a gap
    assert all(label.strip() for label in labels.values())


def test_labels_are_distinct_within_a_dict() -> None:
    for labels, enum in LABELS:
        assert len(set(labels.values())) == len(labels), enum.__name__
