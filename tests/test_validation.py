"""peeklens._validation: one set of checks, errors that restate the input."""

import numpy as np
import pytest

import peeklens as pl
from peeklens import _validation as v
from peeklens.errors import InputError


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(2)])
def test_positive_int_accepts_integers_and_returns_plain_int(value):
    out = v.positive_int(value, "rank")
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize(
    "value, shown",
    [
        (0, "0 (int)"),
        (-3, "-3 (int)"),
        (2.5, "2.5 (float)"),
        ("10", "'10' (str)"),
        (True, "True (bool)"),
        (None, "None (NoneType)"),
        (np.float64(3.0), "(float64)"),
    ],
)
def test_positive_int_restates_the_input(value, shown):
    with pytest.raises(InputError, match="rank must be a positive integer, got") as info:
        v.positive_int(value, "rank")
    assert shown in str(info.value)


def test_integer_variants():
    assert v.non_negative_int(0, "n") == 0
    assert v.optional_positive_int(None, "max_samples") is None and v.optional_positive_int(4, "m") == 4
    with pytest.raises(InputError, match=r"n must be an integer >= 0, got -1 \(int\)"):
        v.non_negative_int(-1, "n")
    with pytest.raises(InputError, match=r"max_samples must be a positive integer or None, got 'all' \(str\)"):
        v.optional_positive_int("all", "max_samples")


def test_finite_float_bounds():
    assert v.finite_float(0, "tol", minimum=0) == 0.0
    assert v.finite_float(np.float32(0.5), "f", minimum=0, maximum=1, strict=True) == 0.5
    for bad in [float("nan"), float("inf"), -1e-9, "0.1", True]:
        with pytest.raises(InputError, match="tol must be a finite number >= 0, got"):
            v.finite_float(bad, "tol", minimum=0)
    with pytest.raises(InputError, match=r"must be a finite number > 0 and <= 1, got 1.5 \(float\)"):
        v.finite_float(1.5, "fraction", minimum=0, maximum=1, strict=True)


def test_boolean():
    assert v.boolean(np.bool_(True), "x") is True
    with pytest.raises(InputError, match=r"x must be True or False, got 1 \(int\)"):
        v.boolean(1, "x")


def test_one_of_names_the_closest_choice():
    assert v.one_of("hals", "solver", ["mu", "hals"]) == "hals"
    with pytest.raises(
        InputError, match=r"unknown solver 'hlas'; did you mean 'hals'\? Choose one of \['hals', 'mu'\]"
    ):
        v.one_of("hlas", "solver", ["mu", "hals"])
    with pytest.raises(InputError, match=r"unknown solver 3; choose one of"):
        v.one_of(3, "solver", ["mu", "hals"])


def test_check_keys_lists_the_valid_ones():
    v.check_keys({}, ["a"], "x")
    with pytest.raises(InputError, match=r"x has no option\(s\) \['refin'\] \(did you mean 'refine'\?\); its options"):
        v.check_keys({"refin": 1}, ["refine", "oversample"], "x")


def test_positive_ints():
    assert v.positive_ints(5, "ranks") == [5]
    assert v.positive_ints(np.array([3, 1]), "ranks") == [3, 1]  # the order given
    for bad, match in [
        ([], "ranks is empty"),
        ([1, 1], "duplicates"),
        ("10", r"iterable of positive integers, got '10'"),
        ([1, -2], r"got -2 \(int\) in \[1, -2\]"),
    ]:
        with pytest.raises(InputError, match=match):
            v.positive_ints(bad, "ranks")


@pytest.mark.parametrize(
    "text, ranks",
    [
        ("10:50:10", [10, 20, 30, 40, 50]),
        ("3:5", [3, 4, 5]),
        ("30,10,10", [10, 30]),
        (" 7 ", [7]),
        ("10:45:10", [10, 20, 30, 40]),
    ],
)
def test_parse_ranks(text, ranks):
    assert v.parse_ranks(text) == ranks


@pytest.mark.parametrize("text", ["a:b", "10:50:0", "0", "1:2:3:4", "", "-3", "0:5"])
def test_parse_ranks_refuses(text):
    with pytest.raises(InputError, match=f"invalid ranks '{text}' for --ranks"):
        v.parse_ranks(text)


def test_factorize_errors_restate_the_input():
    acts = pl.Activations.from_arrays({"a": np.random.default_rng(0).random((6, 9))})
    cases = [
        ({"rank": -3}, r"rank must be a positive integer, got -3 \(int\)"),
        ({"max_iter": 2.0}, r"max_iter must be a positive integer, got 2.0 \(float\)"),
        ({"solver": "hlas"}, r"unknown solver 'hlas'; did you mean 'hals'\?"),
        ({"init": "nndsvd"}, r"unknown init 'nndsvd'; did you mean 'nndsvda'\?"),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
        ({"solver_options": {"refine": -1}}, r"solver_options\['refine'\] must be an integer >= 0, got -1 \(int\)"),
        ({"solver_options": {"extrapolate": "yes"}}, r"solver_options\['extrapolate'\] must be True or False"),
        (
            {"solver": "hals", "solver_options": {"max_iner": 2}},
            r"solver 'hals' has no option\(s\) \['max_iner'\] \(did you mean 'max_inner'\?\); "
            r"its options are \['max_inner'\]",
        ),
        (
            {"solver": "mu", "solver_options": {"max_inner": 2}},
            r"solver 'mu' has no option\(s\) \['max_inner'\]; its options are \[\]",
        ),
    ]
    for kwargs, match in cases:
        kwargs = {"rank": 2, **kwargs}
        with pytest.raises(InputError, match=match):
            pl.factorize(acts, **kwargs)
    with pytest.raises(InputError, match=r"sweep \(passing them to factorize\) has no option\(s\) \['max_iters'\]"):
        pl.sweep(acts, [1], max_iters=3, progress=False)


def test_spectrum_checks():
    acts = pl.Activations.from_arrays({"relu": np.random.default_rng(0).random((6, 9))})
    with pytest.raises(InputError, match=r"k must be a positive integer, got 0 \(int\)"):
        pl.spectrum(acts, k=0)
    with pytest.raises(InputError, match=r"no block 'rleu'; did you mean 'relu'\?"):
        pl.spectrum(acts, blocks=["rleu"])
