"""Rendering helpers: items by kind, "why this item" in words, and escaping of untrusted text.

Everything that comes from data (item text, context, ids, user and project names, reasons) is
shown with st.text / st.code / st.dataframe, or passed through `md()` before it reaches any
markdown-rendering element (st.markdown, st.caption, st.error, widget labels...). Nothing here
ever uses unsafe_allow_html.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import streamlit as st

from workbench.domain import ClaimedItem, ClaimReason, Progress, ProjectInfo, ProjectKind, RankedBy
from workbench.errors import WorkbenchError
from workbench.services.quarantine import ImageUnavailable, image_path

_MD_SPECIAL = set(string.punctuation)
MIN_IMAGE_SIDE = 256


def md(value: Any) -> str:
    """`value` as markdown that shows literally: every ASCII punctuation character is
    backslash-escaped (CommonMark allows that for all of them), so no emphasis, link, HTML tag,
    entity, directive (`:red[...]`) or math survives, and line breaks are kept as hard breaks."""
    text = str(value)
    out = "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)
    return out.replace("\r\n", "\n").replace("\n", "  \n")


_SAFE_SCHEMES = ("http://", "https://", "mailto:", "#")
_LINK = re.compile(r"(\]\s*\()\s*<?([^)\s>]*)>?")
_DIRECTIVE = re.compile(r":([a-z]+(?:-[a-z]+)*)\[")


def safe_markdown(text: str) -> str:
    """Trusted-looking Markdown from an admin (guidelines), made safe to render: raw HTML shows as
    text (every `<` and `&` is escaped), links and images keep only http(s)/mailto/# targets, and
    Streamlit's colour/badge directives are shown literally. Emphasis, headings, lists, tables and
    code keep working."""
    out = str(text).replace("&", "&amp;").replace("<", "&lt;")

    def link(match: re.Match) -> str:
        target = match.group(2)
        return match.group(1) + (target if target.lower().startswith(_SAFE_SCHEMES) else "#")

    out = _LINK.sub(link, out)
    return _DIRECTIVE.sub(lambda m: "\\:" + m.group(1) + "\\[", out)


def error(exc: BaseException | str) -> None:
    """Show a refusal or error message (`str(exc)` of a WorkbenchError) as literal text."""
    st.error(md(exc), icon=":material/error:")


def notice(kind: str, message: str) -> None:
    """A success/info/warning message whose text may contain data (escaped)."""
    getattr(st, kind)(md(message))


# -- items ----------------------------------------------------------------------------------
ImageProblem = ImageUnavailable  # the item's image cannot be shown (missing, outside the root, broken)


def resolve_image(settings: dict[str, Any], relative: str) -> Path:
    """The image file of an item: `relative` under the project's `image_root`, refusing any path
    that resolves outside the root (absolute paths, `..`, symlinks pointing out)."""
    return image_path(settings, relative)


def load_image(path: Path, min_side: int = MIN_IMAGE_SIDE):
    """The image as the label page shows it: a bounded rendition (long side at most 1600 px, tiny
    images upscaled nearest-neighbour so the short side is `min_side`), never the original."""
    import tempfile

    from PIL import Image

    from workbench.importing.images import rendition

    with tempfile.TemporaryDirectory() as cache:
        with Image.open(rendition(Path(path), Path(cache), min_side=min_side)) as shown:
            shown.load()
            return shown.copy()


def _show_image(project: ProjectInfo, relative: Any) -> str | None:
    """Show the item's image as a bounded rendition; the reason when it cannot be shown."""
    from PIL import Image

    from workbench.ui import session

    try:
        actor = session.signed_in_actor()
        path = session.workbench().quarantine.rendition(project, relative or "", actor=actor)
        with Image.open(path) as shown:  # reads the header only: the size for the layout
            width = shown.width
    except WorkbenchError as exc:
        error(exc)
        return str(exc) if getattr(exc, "per_item", False) else None
    except Exception as exc:  # never a traceback on a page; the reason is kept
        reason = f"the image cannot be shown ({type(exc).__name__})"
        error(reason)
        return reason
    st.image(str(path), width=max(width, MIN_IMAGE_SIDE) if width < 640 else 640)
    return None


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else repr(value) if value is None else str(value)


def render_content(project: ProjectInfo, content: dict[str, Any], *, key: str = "item") -> str | None:
    """Show one item's content for its project kind; returns why it could not be shown (an image
    that is missing, broken or too large), else None."""
    context = content.get("context") or {}
    if project.kind == ProjectKind.TEXT:
        if context:
            main, side = st.columns([3, 1])
        else:
            main, side = st.container(), None
        with main:
            st.text(_plain(content.get("text", "")))
        if side is not None:
            with side:
                for name, value in context.items():
                    st.text(f"{name}: {_plain(value)}")
        return None
    if project.kind == ProjectKind.TABULAR:
        import pandas as pd

        features = content.get("features") or {}
        row = {str(k): (v if isinstance(v, (int, float, bool)) or v is None else str(v)) for k, v in features.items()}
        st.dataframe(pd.DataFrame([row]), hide_index=True, key=f"{key}_features")
        if context:
            for name, value in context.items():
                st.text(f"{name}: {_plain(value)}")
        return None
    if project.kind == ProjectKind.IMAGE:
        relative = content.get("image")
        problem = _show_image(project, relative)
        st.text(_plain(relative))
        for name, value in context.items():
            st.text(f"{name}: {_plain(value)}")
        return problem
    st.json(content)
    return None


# -- why this item --------------------------------------------------------------------------
_STRATEGY_WORDS = {
    "margin": "the two most likely labels are closest to each other",
    "least_confidence": "the model's most likely label is least certain",
    "entropy": "the model's prediction is most spread out over the labels",
    "random": "it was drawn at random",
    "cold_start": "it is the most typical item of a cluster of similar items, so the first labels cover the data",
    "qbc_vote": "the committee's models vote for the most different labels",
    "qbc_consensus": "the committee's averaged prediction is most uncertain",
    "qbc_kl": "one committee member disagrees most with the others",
    "bald": "the network's predictions with dropout on disagree most (BALD)",
    "margin_batch": "it is uncertain and unlike the other items chosen with it",
    "margin_density": "it is uncertain and typical of the pool",
}


def why(claim: ClaimedItem, project: ProjectInfo | None = None) -> str:
    """Why the queue served this item, in words: for a ranked item, the strategy that really ranked
    it (a cold start while there is no model, whatever the project's strategy), the model run and
    the score."""
    if claim.reason == ClaimReason.PARTIAL:
        return (
            "Someone else has already started this item, and items with some labels are "
            "finished first so that pairs complete."
        )
    if claim.reason == ClaimReason.EVAL:
        return (
            "This item belongs to the evaluation set: drawn at random and used only to measure "
            "models, never chosen by a strategy."
        )
    if claim.reason == ClaimReason.CONTROL:
        return (
            "Drawn at random from the pool (the control arm), so the gain from active learning "
            "can be measured against random picks."
        )
    if claim.reason == ClaimReason.RANKED:
        strategy = claim.strategy or "unknown"
        ranked_by = RankedBy(
            strategy=strategy,
            project_strategy=project.strategy if project else strategy,
            model_run_id=claim.model_run_id,
            model_free=claim.model_run_id is None,
        )
        words = _STRATEGY_WORDS.get(strategy, "it ranks highest for this strategy")
        score = f", score {claim.score:.3f}" if claim.score is not None else ""
        return f"Ranked by {ranked_by.describe()}{score}: among the remaining items, for this one {words}."
    if claim.reason == ClaimReason.RANDOM:
        return "No model ranking is available yet (or it is used up), so this item was drawn at random."
    return f"Served because: {claim.reason}."


def progress_line(counts: Progress, split: str) -> str:
    row = counts.states(split)
    total = counts.total(split)
    parts = [f"{n} {state}" for state, n in row.items() if n]
    return f"{split}: {total} items" + (" (" + ", ".join(parts) + ")" if parts else "")
