"""The demo project: scikit-learn's bundled digits (1,797 8×8 images, 10 classes), no network.

The images are written as PNGs under WORKBENCH_HOME on first run and imported as an image project.
Demo users get fresh random passwords on every run; they are printed, never stored in clear.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from workbench.config import workbench_home
from workbench.domain import Actor, Role
from workbench.errors import Conflict, NotFound
from workbench.services import Workbench

PROJECT = "digits-demo"
USERS = (("admin", Role.ADMIN), ("reviewer", Role.REVIEWER), ("alice", Role.ANNOTATOR), ("bob", Role.ANNOTATOR))


def write_digit_pngs(folder: Path) -> int:
    """Write the digits as 8-bit grayscale PNGs named by their index; returns how many."""
    folder.mkdir(parents=True, exist_ok=True)
    images = load_digits().images  # values 0..16
    for index, pixels in enumerate(images):
        path = folder / f"digit-{index:04d}.png"
        if not path.exists():
            Image.fromarray((pixels * (255 / 16)).astype(np.uint8), mode="L").save(path)
    return len(images)


def ensure_demo(wb: Workbench, home: Path | None = None) -> dict[str, str]:
    """Create the demo project (once) and the demo users; returns {user: fresh password}."""
    home = home or workbench_home()
    folder = home / "demo" / "digits"
    try:
        wb.projects.get(PROJECT, actor=Actor.operator())
    except NotFound:
        write_digit_pngs(folder)
        wb.projects.create(
            PROJECT,
            "image",
            [str(d) for d in range(10)],
            strategy="margin",
            settings={"image_root": str(folder)},
            actor=Actor.operator(),
        )
        wb.imports.run_folder(PROJECT, folder, seed=0, actor=Actor.operator())
        # a cold-start seed set, so the first items are diverse
        wb.rounds.run_rescore(PROJECT, actor=Actor.operator())
    passwords = {}
    for name, role in USERS:
        password = secrets.token_urlsafe(9)
        try:
            wb.users.add(name, role, password, actor=Actor.operator())
        except Conflict:
            wb.users.set_password(name, password, actor=Actor.operator())
        passwords[name] = password
        if role is not Role.ADMIN:  # the demo's people work on the demo project
            try:
                wb.members.add(PROJECT, name, actor=Actor.operator())
            except Conflict:
                pass  # already a member (the demo ran before)
    return passwords
