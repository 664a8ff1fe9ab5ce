"""Keeps the router's second opinion trained: from a model file when one is configured, else
from the configured labelled sets and the desk's stored examples, again whenever their number
changed. Training runs in a thread; the old model (or none) serves meanwhile."""

import asyncio
import logging
from dataclasses import dataclass

from services.router.label_store import LabelStore
from services.router.labels import Example, desk_examples, for_training
from services.router.second_opinion import OpinionModel, Reviewer, complaint_text, train
from shared.settings import Settings

log = logging.getLogger("disposisi.router.second_opinion")


@dataclass
class OpinionTrainer:
    settings: Settings
    labels: LabelStore
    reviewer: Reviewer
    fallback: str
    _trained_on: int | None = None

    async def refresh(self) -> bool:
        """Train (or load) when there is something new; True when a new model serves."""
        if self.settings.second_opinion_model is not None:
            if self.reviewer.model is not None:
                return False
            self.reviewer.model = await asyncio.to_thread(
                OpinionModel.load, self.settings.second_opinion_model)
            return True
        count = await self.labels.count(self.settings.tenant)
        if count == self._trained_on:
            return False
        examples = [*desk_examples(await self.labels.examples(self.settings.tenant)),
                    *await asyncio.to_thread(self._files)]
        model = await asyncio.to_thread(train, pairs(examples), fallback=self.fallback)
        self.reviewer.model, self._trained_on = model, count
        log.info("second opinion trained on %d examples (%d from the desk)",
                 model.examples if model else 0, count)
        return True

    def _files(self) -> list[Example]:
        return [e for path in self.settings.second_opinion_training for e in for_training(path)]


def pairs(examples: list[Example]) -> list[tuple[str, str]]:
    return [(complaint_text(e.text, e.title), e.agency) for e in examples]
