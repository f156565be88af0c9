"""The relation head's training loss: each value (tail) picks its key (head) among its candidates, or none."""

from collections.abc import Sequence

import torch

from model.nn.network import EntityTagger, gather_rows
from model.relation_batch import RelationInputs, collate_relations
from model.train.evaluate import as_tensors


def tail_choice_loss(
    logits: torch.Tensor, tails: torch.Tensor, targets: torch.Tensor, entities: int
) -> torch.Tensor:
    """Each tail (value) chooses one of its candidate heads (keys) or none: cross-entropy of a softmax over
    [none (logit 0), its candidates' logits], averaged over the tails that have candidates.

    logits, tails, targets: [B, P] (targets 1 linked, 0 not, PAD_TARGET padding). A stable log-sum-exp per
    tail (no clamping, so no logit ever loses its gradient). Decoding matches it: a head is kept when its
    logit is the tail's best and above 0, i.e. sigmoid >= 0.5 (`select_links`)."""
    valid = targets >= 0
    very_low = torch.finfo(logits.dtype).min
    masked = torch.where(valid, logits, torch.full_like(logits, very_low))
    zeros = torch.zeros(logits.shape[0], entities, dtype=logits.dtype, device=logits.device)
    peak = zeros.scatter_reduce(1, tails, masked, reduce="amax", include_self=True).detach()  # >= 0 (none)
    # exp of values <= 0 only (padding gets 0 first): no overflow, so no NaN gradient through torch.where
    relative = torch.where(valid, logits - peak.gather(1, tails), torch.zeros_like(logits))
    shifted = relative.exp() * valid.to(logits.dtype)
    log_denominator = peak + ((-peak).exp() + zeros.scatter_add(1, tails, shifted)).log()
    candidates = zeros.scatter_add(1, tails, valid.to(logits.dtype))
    # a value linked to several keys: the target is "any of them" (log of the summed probabilities)
    positive = (valid & (targets > 0)).to(logits.dtype)
    positive_sum = zeros.scatter_add(1, tails, shifted * positive)
    has_positive = zeros.scatter_add(1, tails, positive) > 0
    chosen = torch.where(has_positive, peak + positive_sum.clamp_min(1e-30).log(), zeros)
    return (log_denominator - chosen)[candidates > 0].mean()


def relation_loss(
    model: EntityTagger, states: torch.Tensor, items: Sequence[RelationInputs]
) -> torch.Tensor | None:
    """The tail-choice loss over the candidate pairs of each window (gold entities)."""
    if model.relation_head is None or not any(len(i.pairs) for i in items):
        return None
    batch = as_tensors(collate_relations(items), states.device)
    entity_states = gather_rows(states, batch["entity_positions"])
    logits = model.relation_head(
        entity_states, batch["entity_labels"], batch["pair_index"], batch["pair_features"]
    )
    entities = batch["entity_labels"].shape[1]
    return tail_choice_loss(logits, batch["pair_index"][..., 1], batch["pair_targets"], entities)
