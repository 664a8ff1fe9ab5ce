"""Keeps the router's second opinion trained: from a model file when one is configured, else
from the configured labelled sets and the desk's stored examples, again whenever their number
changed or a training file did (its size or modification time, as the rulebook's hot reload
notices an edit). Training runs in a thread; the old model (or none) serves meanwhile."""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.router.label_store import LabelStore
from services.router.labels import Example, desk_examples, for_training
from services.router.second_opinion import OpinionModel, Reviewer, complaint_text, train
from shared.settings import Settings

log = logging.getLogger("disposisi.router.second_opinion")

FileState = tuple[str, int, int] | tuple[str, None, None]  # path, mtime in ns, size; None: missing


def files_state(paths: Sequence[Path]) -> tuple[FileState, ...]:
    """What the training files look like now: an edited, replaced or removed file changes it."""
    states: list[FileState] = []
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:
            states.append((str(path), None, None))
        else:
            states.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(states)


@dataclass(frozen=True)
class TrainedOn:
    desk_examples: int
    files: tuple[FileState, ...]


@dataclass
class OpinionTrainer:
    settings: Settings
    labels: LabelStore
    reviewer: Reviewer
    fallback: str
    _trained_on: TrainedOn | None = None

    async def refresh(self) -> bool:
        """Train (or load) when there is something new; True when a new model serves."""
        if self.settings.second_opinion_model is not None:
            if self.reviewer.model is not None:
                return False
            self.reviewer.model = await asyncio.to_thread(
                OpinionModel.load, self.settings.second_opinion_model)
            return True
        paths = self.settings.second_opinion_training
        now = TrainedOn(await self.labels.count(self.settings.tenant),
                        await asyncio.to_thread(files_state, paths))
        if now == self._trained_on:
            return False
        examples = [*desk_examples(await self.labels.examples(self.settings.tenant)),
                    *await asyncio.to_thread(self._files)]
        model = await asyncio.to_thread(train, pairs(examples), fallback=self.fallback)
        self.reviewer.model, self._trained_on = model, now
        log.info("second opinion trained on %d examples (%d from the desk, %d training files)",
                 model.examples if model else 0, now.desk_examples, len(paths))
        return True

    def _files(self) -> list[Example]:
        return [e for path in self.settings.second_opinion_training for e in for_training(path)]


def pairs(examples: list[Example]) -> list[tuple[str, str]]:
    return [(complaint_text(e.text, e.title), e.agency) for e in examples]
