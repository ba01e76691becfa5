"""The stage machine: every allowed move, every forbidden one, written out by hand."""

from __future__ import annotations

import itertools

import pytest

from models import Stage, StageTransitionError, transition

L, CO, CA, VS, V, FC, P, M = (
    Stage.LISTED, Stage.CONTACTED, Stage.CALLED, Stage.VISIT_SCHEDULED, Stage.VISITED,
    Stage.FLOWS_COLLECTED, Stage.PARTICIPANT, Stage.MEMBER,
)  # fmt: skip
D, U, O, X = Stage.DECLINED, Stage.UNREACHABLE, Stage.OPTED_OUT, Stage.CLOSED  # noqa: E741

# The table of DESIGN.md, spelled out independently of the code under test.
ALLOWED: set[tuple[Stage, Stage]] = {
    (L, CO), (CO, CA), (CA, VS), (VS, V), (V, FC), (FC, P), (P, M),
    (CO, VS),  # answered the mailing directly
    (VS, CA),  # visit cancelled, back to the callers
    (D, L), (U, L), (X, L),  # re-listed next year / site reopened
    (U, CA),  # finally reached
    (L, P), (CO, P), (CA, P),  # referred to a quarterly meeting, and came
    (V, P),  # came to a meeting before its flows were collected
    (D, O), (D, X), (U, D), (U, O), (U, X), (X, O),
} | {(stage, exit_) for stage in (L, CO, CA, VS, V, FC, P, M) for exit_ in (D, U, O, X)}  # fmt: skip

ALL_PAIRS = [(a, b) for a, b in itertools.product(Stage, Stage)]


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_moves_return_the_target(current: Stage, target: Stage) -> None:
    assert transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), [pair for pair in ALL_PAIRS if pair not in ALLOWED])
def test_forbidden_moves_raise_with_a_french_reason(current: Stage, target: Stage) -> None:
    with pytest.raises(StageTransitionError) as caught:
        transition(current, target)
    message = str(caught.value)
    assert "refusé" in message and current.value in message and target.value in message


@pytest.mark.parametrize("target", [stage for stage in Stage if stage != Stage.OPTED_OUT])
def test_opted_out_is_final(target: Stage) -> None:
    with pytest.raises(StageTransitionError, match="plus jamais"):
        transition(Stage.OPTED_OUT, target)


def test_staying_put_is_not_a_move() -> None:
    with pytest.raises(StageTransitionError, match="déjà"):
        transition(Stage.CALLED, Stage.CALLED)


def test_skipping_a_step_says_steps_go_one_by_one() -> None:
    with pytest.raises(StageTransitionError, match="une à une"):
        transition(Stage.LISTED, Stage.VISITED)


def test_going_back_is_refused_with_its_reason() -> None:
    with pytest.raises(StageTransitionError, match="retour en arrière"):
        transition(Stage.VISITED, Stage.CONTACTED)


def test_strings_are_accepted_and_unknown_stages_rejected() -> None:
    assert transition("listed", "contacted") is Stage.CONTACTED
    with pytest.raises(ValueError):
        transition("listed", "bogus")


def test_who_made_a_change_reads_in_french_even_when_the_name_is_gone() -> None:
    from models.companies import actor_label

    assert actor_label("caller:3", callers={3: "Jeanne"}) == "Jeanne (bénévole)"
    assert actor_label("caller:4", callers={3: "Jeanne"}) == "bénévole n° 4"  # removed since
    assert actor_label("contact:9") == "un contact de l'entreprise"
    assert actor_label("flow-run:") == "traitement automatique"
    assert actor_label("staff:") == "l'équipe"
    assert actor_label("cli") == "l'équipe, en ligne de commande"
    assert actor_label("portal") == "le portail"
    assert actor_label("import ancien") == "import ancien"  # anything else, as stored
