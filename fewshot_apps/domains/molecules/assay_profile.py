"""Assay profile: each molecule's labels in the training assays, as an input to encoders and
to the ``label-profile`` baseline.

In MoleculeNet-style few-shot splits (PAR / Meta-MGNN's Tox21, SIDER, ToxCast) the *assays*
are split, not the molecules: a test assay's molecules were mostly measured in training
assays too, and activity correlates across assays. A chemist with such a panel reads those
measurements (the "HTS fingerprint" of Petrone et al. 2012); ``label-prior`` averages them
into one score, and a model can use each of them:

* :func:`profile_table` -> ``[molecules, assays] int8``: +1 active, -1 inactive, 0 not
  measured, from the tasks of the named assays (training tasks only: the validation assays'
  labels stay out, so checkpoint selection scores what a test assay would see).
* :class:`AssayProfileBranch`: ``[n] ids -> [n, hidden]``, a linear layer over the one-hot
  (active, inactive) pair of every assay, LayerNorm and ReLU. The encoders concatenate it to
  their trunk (``encoder.assay_profile=true``). Meta-training hides each episode's molecules'
  labels in that episode's own assay (:meth:`AssayProfileBranch.hide`, through the encoder's
  ``hide_tasks``), so a training episode never reads its own labels, as a test episode
  cannot, and reads every other assay, as a test episode does; the transfer baselines'
  multitask pre-training hides every column (one step there mixes every assay's labels).

Molecules of another pool (your own CSV in ``mol predict``) read "not measured": the table
belongs to the store it was computed for. In a molecule-disjoint split the test molecules
were measured in no training assay, so the profile carries nothing there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fewshot_apps.errors import FewshotError


def profile_table(tasks: Sequence, assays: Sequence[str], n_molecules: int) -> Tensor:
    """``[n_molecules, len(assays)] int8``: each molecule's label in each named assay (+1
    active, -1 inactive, 0 not measured), from ``tasks`` (objects with ``name``,
    ``examples`` and ``labels``); an assay named but absent from ``tasks`` raises."""
    by_name = {task.name: task for task in tasks}
    missing = [name for name in assays if name not in by_name]
    if missing:
        raise FewshotError(f"assay profile: no task named {', '.join(map(repr, missing))} "
                           "in this data set's training tasks")
    table = np.zeros((n_molecules, len(assays)), dtype=np.int8)
    for column, name in enumerate(assays):
        task = by_name[name]
        ids = np.asarray(task.examples, dtype=np.int64)
        table[ids, column] = np.where(np.asarray(task.labels) == 1, 1, -1)
    return torch.from_numpy(table)


class AssayProfileBranch(nn.Module):
    """Molecule ids -> ``[n, hidden]`` from their labels in ``assays``.

    The table is not a weight: it is set for a store with :meth:`set_table` (the data set
    does it when it builds or attaches the encoder) and read only for that store's ids.

    Args:
        assays: the profile's assays (their order is the column order).
        hidden: output width.
    """

    def __init__(self, assays: Sequence[str], hidden: int = 64):
        super().__init__()
        if not assays:
            raise FewshotError("an assay profile needs at least one training assay")
        self.assays = list(assays)
        self.layer = nn.Linear(2 * len(self.assays), hidden)
        self.norm = nn.LayerNorm(hidden)
        self.hidden_dim = hidden
        self._store: object | None = None
        self._table: Tensor | None = None
        self._visible = torch.ones(len(self.assays), dtype=torch.bool)
        self._hidden_pairs: Tensor | None = None  # sorted keys id * assays + column

    def set_table(self, store: object, table: Tensor) -> None:
        """Read ``table`` (``[len(store), len(assays)]`` int8) for the ids of ``store``."""
        if table.shape[1] != len(self.assays):
            raise FewshotError(f"assay profile: a table of {table.shape[1]} assays for a "
                               f"branch of {len(self.assays)}")
        self._store, self._table = store, table

    def hide(self, names: Sequence[str], examples: Sequence | None = None) -> None:
        """Read the named assays as "not measured" until the next call (``()``: none). With
        ``examples`` (one id array per name: an episode's molecules), only those molecules'
        labels in that assay: each training episode then reads every other assay, as a test
        episode reads all of them."""
        self._hidden_pairs = None
        if examples is None:
            hidden = set(names)
            self._visible = torch.tensor([a not in hidden for a in self.assays],
                                         dtype=torch.bool)
            return
        self._visible = torch.ones(len(self.assays), dtype=torch.bool)
        column = {name: i for i, name in enumerate(self.assays)}
        keys = [torch.as_tensor(np.asarray(ids, dtype=np.int64)) * len(self.assays)
                + column[name] for name, ids in zip(names, examples) if name in column]
        if keys:
            self._hidden_pairs = torch.unique(torch.cat(keys))

    def values(self, store: object, ids: Tensor) -> Tensor:
        """``[n, assays]`` int8 labels of ``ids`` (zeros for a store without a table)."""
        ids = ids.detach().cpu().long()
        if self._table is None or store is not self._store:
            return torch.zeros(len(ids), len(self.assays), dtype=torch.int8)
        values = self._table[ids] * self._visible.to(torch.int8)
        if self._hidden_pairs is not None:
            keys = ids[:, None] * len(self.assays) + torch.arange(len(self.assays))
            values = values * ~torch.isin(keys, self._hidden_pairs)
        return values

    def forward(self, store: object, ids: Tensor) -> Tensor:
        """``[n] -> [n, hidden]``."""
        values = self.values(store, ids).to(self.layer.weight.device)
        onehot = torch.cat([values == 1, values == -1], dim=1).to(self.layer.weight.dtype)
        return F.relu(self.norm(self.layer(onehot)))


class AssayProfileInput:
    """What the molecule encoders share for ``encoder.assay_profile``: the optional branch,
    its settings, ``hide_tasks`` (the encoder contract's hook for meta-training) and
    :meth:`set_assay_profile`. The encoder calls :meth:`_init_assay_profile` in its
    ``__init__`` (after ``nn.Module.__init__``) and concatenates :meth:`profile_features` to
    its trunk."""

    #: Multitask pre-training hides every training assay from this encoder's inputs (see
    #: :func:`fewshot_apps.core.encoders.pretraining_hidden`).
    hides_tasks_in_pretraining = True
    #: ``hide_tasks`` takes each task's examples (:func:`fewshot_apps.core.encoders.tasks_hidden`).
    hides_task_examples = True

    def _init_assay_profile(self, assay_profile: bool, profile_assays: Sequence[str] | None,
                            profile_hidden: int) -> int:
        """Build the branch when ``assay_profile``; record its settings; its width (0 without)."""
        self.profile_branch = None
        if not assay_profile:
            return 0
        if not profile_assays:
            raise FewshotError("encoder.assay_profile needs the training assays: build the "
                               "encoder through its data set (make_encoder)")
        self.profile_branch = AssayProfileBranch(profile_assays, profile_hidden)
        # Saved only when on: configs saved before the setting existed load unchanged.
        self.settings.update(assay_profile=True, profile_hidden=int(profile_hidden),
                             profile_assays=list(profile_assays))
        return int(profile_hidden)

    def set_assay_profile(self, store: object, table: Tensor) -> None:
        """The profile ``table`` of ``store``'s molecules (a no-op without the branch)."""
        if self.profile_branch is not None:
            self.profile_branch.set_table(store, table)

    def hide_tasks(self, task_names: Sequence[str], examples: Sequence | None = None) -> None:
        """Read the named assays' labels as "not measured" until the next call (with
        ``examples``, one id array per name: only those molecules' labels)."""
        if self.profile_branch is not None:
            self.profile_branch.hide(task_names, examples)

    def profile_features(self, ids: Tensor) -> Tensor | None:
        """``[n, profile_hidden]`` of the current store's ids, or None without the branch."""
        if self.profile_branch is None:
            return None
        return self.profile_branch(self.store, ids)


__all__ = ["AssayProfileBranch", "AssayProfileInput", "profile_table"]
