"""The demo's trainer is the one trainer (modelswarm.train); these names stay for old imports."""

from __future__ import annotations

from pathlib import Path

from ..train import TrainRecipe, read_pairs, train_files


def train_expert(base_dir: Path, train_files_: list[Path], out_dir: Path, recipe: TrainRecipe = TrainRecipe(),
                 progress: bool = False) -> dict:
    return train_files(base_dir, train_files_, out_dir, recipe, progress)


__all__ = ["TrainRecipe", "read_pairs", "train_expert"]
