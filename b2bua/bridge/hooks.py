"""Runs the configured call features' hooks in order, so one broken feature cannot
break a call: an exception is logged and the feature skipped for that hook."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..logs import Logger
from ..routing import Reject


class Hooks:
    """The chain of ICallFeature providers, in configuration order."""

    _log = Logger(namespace="b2bua.features")
    __slots__ = ("features",)

    def __init__(self, features: Sequence[Any] = ()) -> None:
        self.features = tuple(features)

    def __bool__(self) -> bool:
        return bool(self.features)

    def first_reject(self, hook: str, *args: Any) -> Reject | None:
        """Call ``hook`` on each feature until one returns a Reject; return it."""
        for feature in self.features:
            try:
                result = getattr(feature, hook)(*args)
            except Exception:
                self._log.failure(
                    "Call feature {feature} failed in {hook}", feature=repr(feature), hook=hook
                )
                continue
            if isinstance(result, Reject):
                return result
        return None

    def notify(self, hook: str, *args: Any) -> None:
        """Call ``hook`` on every feature (results ignored)."""
        for feature in self.features:
            try:
                getattr(feature, hook)(*args)
            except Exception:
                self._log.failure(
                    "Call feature {feature} failed in {hook}", feature=repr(feature), hook=hook
                )
