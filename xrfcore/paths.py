"""Where things live: the repository, the user's folder, models, the shipped default model.

The one place these paths are worked out; everything else (the registry, the jobs, the model
loader, the app) asks here. Environment variables override the defaults:

``XRF_USER_DIR``
    Uploads, label files, user models, jobs (default ``<repo>/user_data``).
``XRF_DEFAULT_MODEL``
    The default model file (default ``<repo>/models/default.keras``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DEFAULT_MODEL_ENV",
    "USER_DIR_ENV",
    "repo_root",
    "user_dir",
    "models_dir",
    "jobs_dir",
    "shipped_models_dir",
    "default_model_path",
]

DEFAULT_MODEL_ENV = "XRF_DEFAULT_MODEL"
USER_DIR_ENV = "XRF_USER_DIR"


def repo_root() -> Path:
    """The repository (or installation) root: the folder holding the ``xrfcore`` package."""
    return Path(__file__).resolve().parents[1]


def user_dir() -> Path:
    """Base folder for user data: ``$XRF_USER_DIR`` or ``<repo>/user_data`` (not created here)."""
    env = os.environ.get(USER_DIR_ENV)
    return Path(env).expanduser().resolve() if env else repo_root() / "user_data"


def models_dir() -> Path:
    """Folder of user models, ``<user dir>/models`` (created on demand by its writers)."""
    return user_dir() / "models"


def jobs_dir() -> Path:
    """Folder of background jobs, ``<user dir>/jobs``."""
    return user_dir() / "jobs"


def shipped_models_dir() -> Path:
    """The repository's read-only ``models/`` folder."""
    return repo_root() / "models"


def default_model_path() -> Path:
    """The shipped default model: ``$XRF_DEFAULT_MODEL`` if set, else ``<repo>/models/default.keras``."""
    env = os.environ.get(DEFAULT_MODEL_ENV)
    if env:
        return Path(env).expanduser()
    return shipped_models_dir() / "default.keras"
