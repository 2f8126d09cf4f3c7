"""The real Omniglot background sets of the shared data: counts, splits, rotations."""

from __future__ import annotations

import pytest
import torch

from memlearn.data import VAL_ALPHABETS, TaskSampler, load_split
from memlearn.data.preprocess import load_image_set

pytestmark = pytest.mark.data

SMALL1 = {"Balinese": 24, "Early_Aramaic": 22, "Greek": 24, "Korean": 40, "Latin": 26}
SMALL2 = {"Greek": 24, "Japanese_(katakana)": 47, "Latin": 26, "Sanskrit": 42, "Tagalog": 17}


@pytest.fixture(scope="module")
def background(shared_data):
    return load_image_set("images_background", shared_data)


def test_background_counts(background):
    assert background.images.shape == (964, 20, 28, 28)
    assert len(background.alphabet_names) == 30
    per_alphabet = torch.bincount(torch.from_numpy(background.class_alphabet)).tolist()
    sizes = dict(zip(background.alphabet_names, per_alphabet, strict=True))
    assert sizes["Tifinagh"] == 55 and sizes["Blackfoot_(Canadian_Aboriginal_Syllabics)"] == 14
    # Omniglot strokes are thin: a few percent of the pixels are ink; every image has a stroke.
    flat = background.images.reshape(19280, -1)
    assert 0.04 < flat.mean() / 255 < 0.15 and (flat.max(axis=1) >= 128).all()


def test_train_val_partition_alphabets_without_leakage(shared_data, background):
    train = load_split("train", shared_data, rotations=False)
    val = load_split("val", shared_data)
    assert set(val.alphabet_names) == set(VAL_ALPHABETS)
    assert not set(train.alphabet_names) & set(val.alphabet_names)
    assert len(train.alphabet_names) == 25
    assert train.n_classes + val.n_classes == 964
    alpha_of = {n.split("/")[0] for n in train.class_names}
    assert alpha_of == set(train.alphabet_names)
    assert all(n.split("/")[0] in VAL_ALPHABETS for n in val.class_names)
    # Tasks drawn from val only ever hold val characters.
    tasks = TaskSampler(val, ways=5, seed=0).sample(50)
    names = {val.class_names[i] for i in tasks.classes.flatten().tolist()}
    assert all(n.split("/")[0] in VAL_ALPHABETS for n in names)


def test_train_rotations_are_four_times_the_classes(shared_data):
    plain = load_split("train", shared_data, rotations=False)
    rotated = load_split("train", shared_data)  # default: rotations on for train
    n = plain.n_classes
    assert rotated.n_classes == 4 * n
    assert torch.equal(rotated.images[:n], plain.images)
    assert torch.equal(rotated.images[n : 2 * n], torch.rot90(plain.images, 1, dims=(-2, -1)))
    assert torch.equal(rotated.images[3 * n :], torch.rot90(plain.images, 3, dims=(-2, -1)))
    assert torch.bincount(rotated.rotation).tolist()[::90] == [n, n, n, n]
    assert torch.equal(rotated.alphabet[2 * n : 3 * n], plain.alphabet)
    assert rotated.class_names[n].endswith("@rot90")
    assert load_split("val", shared_data).rotation.max() == 0  # default off outside train
    back = rotated.unrotated()
    assert torch.equal(back.images, plain.images) and torch.equal(back.alphabet, plain.alphabet)
    assert back.class_names == plain.class_names and int(back.rotation.max()) == 0
    assert plain.unrotated() is plain


@pytest.mark.parametrize(("split", "expected"), [("small1", SMALL1), ("small2", SMALL2)])
def test_small_sets(shared_data, split, expected):
    classes = load_split(split, shared_data)
    assert classes.images.shape == (sum(expected.values()), 20, 1, 28, 28)
    sizes = torch.bincount(classes.alphabet).tolist()
    assert dict(zip(classes.alphabet_names, sizes, strict=True)) == expected


@pytest.mark.parametrize(
    ("rest", "small", "alphabets"), [("rest1", "small1", 22), ("rest2", "small2", 19)]
)
def test_rest_splits_share_no_alphabet_with_their_small_set_or_val(
    shared_data, rest, small, alphabets
):
    from memlearn.data.splits import SIBLING_SCRIPTS, SMALL_ALPHABETS

    classes = load_split(rest, shared_data)
    names = set(classes.alphabet_names)
    assert len(names) == alphabets and classes.rotation.max() == 0
    assert not names & set(load_split(small, shared_data).alphabet_names)
    assert not names & set(VAL_ALPHABETS)
    small_names = set(load_split(small, shared_data).alphabet_names)
    assert small_names == set(SMALL_ALPHABETS[small])
    for group in SIBLING_SCRIPTS:  # no sibling script of a small-set alphabet
        assert not (small_names & set(group) and names & set(group))
    assert sorted(set(classes.alphabet.tolist())) == list(range(alphabets))
