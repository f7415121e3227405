"""MM-Fi splits and protocols over the full 40-subject x 27-action sequence grid."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from rigserve.sensors.dataset import SPLITS, MMFiIndex, MMFiSequence, Split, split_sequences
from rigserve.sensors.specs import ACTION_CODES, PROTOCOLS, SUBJECTS, environment_of

from tests.sensors.mmfi_folder import write_folder


def grid(subjects: tuple[str, ...] = SUBJECTS,
         actions: tuple[str, ...] = ACTION_CODES) -> list[MMFiSequence]:
    """Sequences as the index would list them for a full MM-Fi download."""
    return [MMFiSequence(environment_of(s), s, a, Path(s, a), {"lidar": (1,)}, {"lidar": ()}, 1)
            for s in subjects for a in actions]


def subjects_by_action(seqs: tuple[MMFiSequence, ...]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for s in seqs:
        out[s.action].add(s.subject)
    return out


def test_random_split_holds_out_8_of_40_subjects_per_action() -> None:
    split = split_sequences(grid(), "random", "p3", seed=0)
    train, val = subjects_by_action(split.train), subjects_by_action(split.val)
    assert set(val) == set(ACTION_CODES)
    for action in ACTION_CODES:
        assert len(val[action]) == 8
        assert len(train[action]) == 32
        assert not train[action] & val[action]
    # Shuffled per action: not the same 8 subjects everywhere.
    assert len({frozenset(v) for v in val.values()}) > 1


def test_random_split_is_seeded_and_stable_across_protocols() -> None:
    seqs = grid()
    a = split_sequences(seqs, "random", "p3", seed=3)
    assert a == split_sequences(seqs, "random", "p3", seed=3)
    assert a.val != split_sequences(seqs, "random", "p3", seed=4).val
    p1 = split_sequences(seqs, "random", "p1", seed=3)
    assert {s.action for s in p1.train + p1.val} == set(PROTOCOLS["p1"])
    assert set(p1.val) == {s for s in a.val if s.action in PROTOCOLS["p1"]}


def test_random_split_scales_to_fewer_subjects() -> None:
    split = split_sequences(grid(SUBJECTS[:10], ("A01", "A02")), "random", "p3", seed=0)
    assert {a: len(v) for a, v in subjects_by_action(split.val).items()} == {"A01": 2, "A02": 2}
    tiny = split_sequences(grid(("S01", "S02"), ("A01",)), "random", seed=0)
    assert len(tiny.val) == 1
    assert len(tiny.train) == 1


def test_cross_subject_validates_on_every_fifth_subject() -> None:
    split = split_sequences(grid(), "cross_subject", "p2")
    assert {s.subject for s in split.val} == {f"S{i:02d}" for i in range(5, 41, 5)}
    assert not {s.subject for s in split.train} & {s.subject for s in split.val}
    assert {s.action for s in split.train} == set(PROTOCOLS["p2"])


def test_cross_environment_trains_on_e01_to_e03_and_validates_on_e04() -> None:
    split = split_sequences(grid(), "cross_environment", "p1")
    assert {s.env for s in split.train} == {"E01", "E02", "E03"}
    assert {s.env for s in split.val} == {"E04"}
    assert len(split.val) == 10 * len(PROTOCOLS["p1"])


@pytest.mark.parametrize("kind", ["random", "cross_subject", "cross_environment"])
def test_meta_val_is_carved_from_train_and_never_from_val(kind: str) -> None:
    seqs = grid()
    plain = split_sequences(seqs, kind, "p3", seed=1)
    split = split_sequences(seqs, kind, "p3", seed=1, meta_val_ratio=0.25)
    assert split.val == plain.val
    assert split.meta_val
    assert set(split.train) | set(split.meta_val) == set(plain.train)
    assert not set(split.train) & set(split.meta_val)
    # Held out by subject within each action, so meta-val measures unseen people.
    train, meta = subjects_by_action(split.train), subjects_by_action(split.meta_val)
    assert all(not train[a] & meta[a] for a in meta)


def test_bad_split_arguments_name_what_is_accepted() -> None:
    seqs = grid(("S01", "S02"), ("A01",))
    with pytest.raises(ValueError, match="unknown split 'loso'; registered: cross_environment, "
                                         "cross_subject, random"):
        split_sequences(seqs, "loso")
    with pytest.raises(ValueError, match="unknown protocol 'p4'; accepted: p1, p2, p3"):
        split_sequences(seqs, "random", "p4")
    with pytest.raises(ValueError, match=r"meta_val_ratio must be in \[0, 1\), got 1.5"):
        split_sequences(seqs, meta_val_ratio=1.5)
    with pytest.raises(ValueError, match=r"'cross_environment' \(protocol p3\) leaves val empty "
                                         r"over 2 sequences, environments \['E01'\]"):
        split_sequences(seqs, "cross_environment")


@pytest.mark.parametrize("kind", sorted(SPLITS))
def test_every_registered_split_validates_some_sequences_and_trains_on_the_rest(kind: str) -> None:
    seqs = grid()
    split = split_sequences(seqs, kind, "p3", seed=0)
    assert split.train
    assert split.val
    assert set(split.train) | set(split.val) == set(seqs)
    assert not set(split.train) & set(split.val)
    assert SPLITS[kind](seqs, 0, 0.2) == set(split.val)


def test_split_round_trips_through_split_json(tmp_path: Path) -> None:
    write_folder(tmp_path, ["S01", "S02", "S05"], ["A01"], frames=1, modalities=("lidar",))
    index = MMFiIndex.scan(tmp_path)
    split = split_sequences(index, "cross_subject", meta_val_ratio=0.5)
    data = split.to_dict()
    assert data["val"] == ["E01/S05/A01"]
    assert data["split"] == "cross_subject"
    assert len(data["train"]) == len(data["meta_val"]) == 1
    assert Split.from_dict(data, index) == split
