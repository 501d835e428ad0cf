"""Proposals: a candidate version for an alias goes propose -> approve (once its rule passes) -> promote, or is
rejected; each step on record.

They work on the :class:`~driftline.lifecycle.service.Lifecycle`'s parts and take its lock to move the alias, so a
promotion is checked, stored, swapped into the table and audited like any other alias move.

An approval also asks the promotion gate (``evidence``, given by the server: the experiments service, which this
layer must not import) whether an experiment of the candidate against the alias's version passes its rules; its
final numbers are kept on the proposal as the promotion record.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from driftline.errors import Conflict, DriftlineError, ProposalNotFound
from driftline.lifecycle.approval import ApprovalRule, judge
from driftline.lifecycle.references import version_text
from driftline.store.audit import AuditAction
from driftline.store.evaluations import EvaluationStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from driftline.lifecycle.service import Lifecycle
    from driftline.store.evaluations import EvaluationSummary
    from driftline.store.proposals import Proposal, ProposalStore

__all__ = ["Gate", "Proposals"]


class Gate(NamedTuple):
    """The promotion gate's answer for a proposal: whether its experiment's rules pass, the evidence in words (the
    failing rules on a refusal), and the record kept on the proposal when it is approved (compact JSON)."""

    ready: bool
    text: str
    record: dict[str, Any]


class Proposals:
    """Propose, approve, promote and reject, on a lifecycle and the proposals table."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        store: ProposalStore,
        evidence: Callable[[Proposal], Gate | None] | None = None,
        concluded: Callable[[Proposal, str], Awaitable[None]] | None = None,
    ) -> None:
        """Move aliases through ``lifecycle``; keep the proposals in ``store``. ``evidence``: the promotion gate
        (blocking; None when the proposal has no experiment, then only its shadow rule applies); ``concluded``:
        told of each promotion once the alias moved (with the promoter), so the experiment it rested on ends."""
        self.lifecycle = lifecycle
        self.store = store
        self.evidence = evidence
        self.concluded = concluded

    def get(self, pid: int) -> Proposal:
        """One proposal by id.

        Raises:
            ProposalNotFound: there is none with that id.
        """
        proposal = self.store.proposal(pid)
        if proposal is None:
            raise ProposalNotFound(f"no proposal {pid}")
        return proposal

    async def propose(
        self,
        name: str,
        version: int,
        alias: str,
        rule: ApprovalRule | None,
        actor: str,
        reason: str | None = None,
    ) -> Proposal:
        """Make a loaded version the candidate for an alias."""
        lc = self.lifecycle
        await lc.prepare_takeover(name, alias, version)
        lc.check_takeover(name, alias, version)
        if lc.table.routes(name).aliases.get(alias) == version:
            raise Conflict(f"alias {alias!r} of model {name!r} already points at version {version}")
        proposal = self.store.propose(
            name, alias, version, msgspec.structs.asdict(rule) if rule else None, actor, reason
        )
        lc.audit.record(
            AuditAction.PROPOSE,
            name,
            actor=actor,
            version_before=version_text(lc.table.routes(name).aliases.get(alias)),
            version_after=str(version),
            reason=f"proposal {proposal.id} for {alias}" + (f": {reason}" if reason else ""),
        )
        return proposal

    def rule_status(self, proposal: Proposal) -> tuple[bool, str]:
        """Whether the proposal's rule passes now, and the evidence."""
        if not proposal.rule:
            return True, "no rule"
        rule = msgspec.convert(proposal.rule, ApprovalRule)
        current = self.lifecycle.table.routes(proposal.model).aliases.get(proposal.alias)
        pair = next(
            (
                p
                for p in self.lifecycle.shadow_pairs(proposal.model)
                if p.primary == current and p.shadow == proposal.version
            ),
            None,
        )
        return judge(rule, pair, proposal.version, current)

    def evaluation(self, proposal: Proposal) -> EvaluationSummary | None:
        """The proposed version's latest offline evaluation (``driftline evaluate``), for whoever approves it."""
        return EvaluationStore(self.store.db).summary(proposal.model, proposal.version)

    async def approve(self, pid: int, actor: str, reason: str | None = None) -> Proposal:
        """Approve a proposal once its rule passes."""
        proposal = self.get(pid)
        if proposal.state != "proposed":
            raise Conflict(f"proposal {pid} is {proposal.state}; only a proposed one can be approved")
        ok, evidence = self.rule_status(proposal)
        gate = None
        if ok and self.evidence is not None:
            gate = await asyncio.to_thread(self.evidence, proposal)  # a report reads captured rows
            if gate is not None:
                ok, evidence = gate.ready, f"{evidence}; {gate.text}" if proposal.rule else gate.text
        audit = self.lifecycle.audit
        if not ok:
            audit.record(
                AuditAction.APPROVE_REFUSED,
                proposal.model,
                actor=actor,
                version_after=str(proposal.version),
                reason=f"proposal {pid}: {evidence}",
            )
            raise Conflict(f"proposal {pid} cannot be approved yet: {evidence}")
        record = None if gate is None else msgspec.json.encode({**gate.record, "approved_by": actor}).decode()
        if not self.store.decide(pid, "approved", actor, reason, expect="proposed", evidence=record):
            raise Conflict(f"proposal {pid} changed state meanwhile")
        audit.record(
            AuditAction.APPROVE,
            proposal.model,
            actor=actor,
            version_after=str(proposal.version),
            reason=f"proposal {pid}: {evidence}" + (f"; {reason}" if reason else ""),
        )
        return self.get(pid)

    async def promote(self, pid: int, actor: str, reason: str | None = None) -> Proposal:
        """Move the alias of an approved proposal to its version (atomically).

        A lost race is refused (409, audited as ``promote_refused``, the alias untouched): the proposal was
        rejected or promoted meanwhile (by this or another worker process), or the alias moved after the approval
        (the approval's evidence was about the version it pointed at then).
        """
        proposal = self.get(pid)
        if proposal.state != "approved":
            raise Conflict(f"proposal {pid} is {proposal.state}; it must be approved before it is promoted")
        name, alias = proposal.model, proposal.alias
        lc = self.lifecycle
        await lc.catch_up(name, {proposal.version})
        async with lc.lock:
            row = next((r for r in lc.deployments.aliases(name) if r.alias == alias), None)
            before = row.version if row is not None else None
            try:
                now = self.get(pid)  # as it is now: another call may have decided it while this one waited
                if now.state != "approved":
                    raise Conflict(f"proposal {pid} is {now.state}: it was decided meanwhile; it cannot be promoted")
                if row is not None and row.updated_at > now.updated_at:
                    raise Conflict(
                        f"alias {alias!r} of model {name!r} moved to version {row.version} after proposal {pid} "
                        "was approved; propose again"
                    )
                model = lc.check_takeover(name, alias, proposal.version)
                # The claim is one conditional UPDATE, so of two promotes (or a promote and a reject) in any
                # processes exactly one wins; the alias moves only after it.
                if not self.store.decide(pid, "promoted", actor, reason, expect="approved"):
                    state = self.get(pid).state
                    raise Conflict(f"proposal {pid} is {state}: it was decided meanwhile; it cannot be promoted")
            except DriftlineError as exc:
                lc.audit.record(
                    AuditAction.PROMOTE_REFUSED, name, actor=actor, version_after=str(proposal.version), reason=str(exc)
                )
                raise
            if before != proposal.version:
                lc.move(AuditAction.ALIAS_SET, name, alias, model, before, actor, f"promotion of proposal {pid}")
            lc.audit.record(
                AuditAction.PROMOTE,
                name,
                actor=actor,
                version_before=version_text(before),
                version_after=str(proposal.version),
                sha256=model.sha256,
                reason=f"proposal {pid}: {alias}" + (f": {reason}" if reason else ""),
            )
        promoted = self.get(pid)
        if self.concluded is not None:  # after the lock: ending an experiment changes the routing, which takes it
            await self.concluded(promoted, actor)
        return promoted

    async def reject(self, pid: int, actor: str, reason: str | None = None) -> Proposal:
        """Close a proposed or approved proposal without promoting it."""
        proposal = self.get(pid)
        if proposal.state not in {"proposed", "approved"}:
            raise Conflict(f"proposal {pid} is {proposal.state}; it can no longer be rejected")
        if not self.store.decide(pid, "rejected", actor, reason, expect=proposal.state):
            raise Conflict(f"proposal {pid} changed state meanwhile")
        self.lifecycle.audit.record(
            AuditAction.REJECT,
            proposal.model,
            actor=actor,
            version_after=str(proposal.version),
            reason=f"proposal {pid}",
        )
        return self.get(pid)
