"""The company stage machine: one pure function that returns the new stage or refuses with a reason."""

from __future__ import annotations

from models.enums import STAGE_LABELS_FR, Stage

# The pipeline, in order; a company moves forward one step at a time, except where
# EXTRA_MOVES says otherwise.
PIPELINE: tuple[Stage, ...] = (
    Stage.LISTED,
    Stage.CONTACTED,
    Stage.CALLED,
    Stage.VISIT_SCHEDULED,
    Stage.VISITED,
    Stage.FLOWS_COLLECTED,
    Stage.PARTICIPANT,
    Stage.MEMBER,
)

# Exits reachable from any stage still open (the pipeline, declined, unreachable).
EXITS: frozenset[Stage] = frozenset(
    {Stage.DECLINED, Stage.UNREACHABLE, Stage.OPTED_OUT, Stage.CLOSED}
)

EXTRA_MOVES: dict[Stage, frozenset[Stage]] = {
    # A company brought to a quarterly meeting by a participant (a referral) and present
    # there becomes a participant without the mailing, the calls or the visit.
    Stage.LISTED: frozenset({Stage.PARTICIPANT}),
    # A company that answers the mailing by itself can be visited without the phone call.
    Stage.CONTACTED: frozenset({Stage.VISIT_SCHEDULED, Stage.PARTICIPANT}),
    Stage.CALLED: frozenset({Stage.PARTICIPANT}),
    # A visited company that comes to a meeting before its flows are collected participates.
    Stage.VISITED: frozenset({Stage.PARTICIPANT}),
    # A cancelled visit sends the company back to the callers.
    Stage.VISIT_SCHEDULED: frozenset({Stage.CALLED}),
    # A declined or unreachable company may be re-listed next year; an unreachable one
    # that finally answers goes on where it stopped.
    Stage.DECLINED: frozenset({Stage.LISTED, Stage.OPTED_OUT, Stage.CLOSED}),
    Stage.UNREACHABLE: frozenset(
        {Stage.LISTED, Stage.CALLED, Stage.DECLINED, Stage.OPTED_OUT, Stage.CLOSED}
    ),
    # A site that ceased trading and reopens is listed again from scratch; its people may
    # still ask never to hear from the programme again.
    Stage.CLOSED: frozenset({Stage.LISTED, Stage.OPTED_OUT}),
    # opted_out is final: no message of any kind, ever again.
    Stage.OPTED_OUT: frozenset(),
}


class StageTransitionError(ValueError):
    """A stage change the programme does not allow; the message is in French for staff."""

    def __init__(self, current: Stage, target: Stage, reason: str) -> None:
        super().__init__(
            f"passage de « {STAGE_LABELS_FR[current]} » ({current}) à "
            f"« {STAGE_LABELS_FR[target]} » ({target}) refusé : {reason}"
        )
        self.current = current
        self.target = target


def allowed_targets(current: Stage) -> frozenset[Stage]:
    """Every stage a company at ``current`` may move to."""
    targets = set(EXTRA_MOVES.get(current, frozenset()))
    if current in PIPELINE:
        position = PIPELINE.index(current)
        if position + 1 < len(PIPELINE):
            targets.add(PIPELINE[position + 1])
        targets |= EXITS
    return frozenset(targets - {current})


def transition(current: Stage | str, target: Stage | str) -> Stage:
    """Return ``target`` as the company's new stage, or raise StageTransitionError saying why not."""
    current, target = Stage(current), Stage(target)
    if current == target:
        raise StageTransitionError(current, target, "l'entreprise est déjà à cette étape")
    if target in allowed_targets(current):
        return target
    if current == Stage.OPTED_OUT:
        reason = "l'entreprise s'est désinscrite ; elle ne doit plus jamais être sollicitée"
    elif (
        current in PIPELINE
        and target in PIPELINE
        and PIPELINE.index(target) < PIPELINE.index(current)
    ):
        reason = "un retour en arrière n'est pas prévu depuis cette étape"
    elif current in PIPELINE and target in PIPELINE:
        reason = "les étapes se franchissent une à une"
    else:
        reason = "ce passage n'est pas prévu par le parcours"
    raise StageTransitionError(current, target, reason)
