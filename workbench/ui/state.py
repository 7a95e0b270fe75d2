"""Page state kept between Streamlit reruns, as small typed dataclasses.

They live here, not in the page scripts: a page script is executed afresh on every rerun, so a
class defined in it would be a new class each time and `isinstance` on the stored value would fail.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.domain import ClaimedItem


@dataclass(frozen=True)
class Shown:
    """What the label page holds between reruns."""

    project_id: int
    claim: ClaimedItem | None
    waiting: int  # with no claim: items other annotators hold that may still come back to this one
    shown_at: float  # time.monotonic() when this claim was first shown
    fresh: bool  # set by a callback that just claimed: no renew in the rerun that follows


@dataclass(frozen=True)
class ReviewPick:
    """The case the review page shows: always the one its selector names."""

    project_id: int
    item_id: int
    external_id: str
