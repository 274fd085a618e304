"""The gate's thresholds: defaults, a TOML file, overrides, and mistakes named."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.errors import UsageError
from workbench.validation.config import Thresholds, load_thresholds, names


def test_a_file_changes_only_what_it_names_at_the_top_or_under_validation(tmp_path: Path) -> None:
    path = tmp_path / "gate.toml"
    path.write_text(
        "alpha = 0.01\nmin_trades = 50\n\n[validation]\nfolds = 8\nscheme = 'rolling'\n"
    )
    loaded = load_thresholds(path)
    expected = Thresholds().as_dict() | {
        "alpha": 0.01,
        "min_trades": 50,
        "folds": 8,
        "scheme": "rolling",
    }
    assert loaded.as_dict() == expected
    assert tuple(expected) == names()


def test_overrides_are_checked_like_a_file() -> None:
    changed = Thresholds().but({"hac_lags": 3, "alpha": 0.1})
    assert (changed.hac_lags, changed.alpha, Thresholds().alpha) == (3, 0.1, 0.05)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"alpha": 1.5}, "Expected `float` < 1.0 - at `alpha`"),
        ({"alpha": "0.1"}, "Expected `float`, got `str` - at `alpha`"),
        ({"folds": 1}, "Expected `int` >= 2 - at `folds`"),
        ({"min_trades": 2.5}, "Expected `int`, got `float` - at `min_trades`"),
        ({"scheme": "expanding"}, "Invalid enum value 'expanding' - at `scheme`"),
        ({"aplha": 0.1}, "unknown field `aplha`"),
    ],
)
def test_a_wrong_threshold_is_refused_by_name(values: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match="thresholds from an override: ") as caught:
        Thresholds().but(values)
    assert message in str(caught.value)


def test_an_unreadable_or_malformed_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read thresholds .*missing\.toml"):
        load_thresholds(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("alpha = \n")
    with pytest.raises(UsageError, match=r"bad\.toml are not TOML"):
        load_thresholds(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("validation = 3\n")
    with pytest.raises(UsageError, match=r"\[validation\] must be a table"):
        load_thresholds(wrong)
    out_of_range = tmp_path / "range.toml"
    out_of_range.write_text("[validation]\nmin_returns = 2\n")
    with pytest.raises(UsageError, match=r"range\.toml: Expected `int` >= 3 - at `min_returns`"):
        load_thresholds(out_of_range)
