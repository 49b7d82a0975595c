"""Config fragments: reading, merging (later wins, as merge_config.sh does),
and the subset check against a real .config captured from a build."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmod_dups.build import fragments
from kmod_dups.build.fragments import Setting
from kmod_dups.errors import UserError

DATA = Path(__file__).parent / "data"
CAPTURED = DATA / "boot+bcc+test_kmod+dups.config"
DEFAULT = ["boot", "bcc", "test_kmod", "dups"]
CONTROL = ["boot", "bcc", "test_kmod", "nodups"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parse_line_forms() -> None:
    assert fragments.parse_line("CONFIG_FOO=y") == ("FOO", "y")
    assert fragments.parse_line("CONFIG_NR_CPUS=512") == ("NR_CPUS", "512")
    assert fragments.parse_line('CONFIG_CMDLINE="a b"') == ("CMDLINE", '"a b"')
    assert fragments.parse_line("# CONFIG_FOO is not set") == ("FOO", "n")
    assert fragments.parse_line("# a comment about CONFIG_FOO") is None
    assert fragments.parse_line("") is None


def test_merge_later_fragment_wins_and_keeps_source(tmp_path: Path) -> None:
    a = write(tmp_path, "a.config", "# first\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n")
    b = write(tmp_path, "b.config", "CONFIG_B=y\nCONFIG_C=y\n")
    merged = fragments.merge([a, b])
    assert {k: s.value for k, s in merged.items()} == {"A": "y", "B": "y", "C": "y"}
    assert merged["B"].source == b and merged["B"].line == 1
    assert merged["A"].where == "a.config:2"
    assert fragments.merge([b, a])["C"].value == "n"


def test_a_line_that_is_not_a_setting_is_an_error(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.config", "CONFIG_A=y\nCONFIG_B y\n")
    with pytest.raises(UserError, match=r"bad.config:2: not a config line"):
        fragments.read(bad)


def test_locate_by_name_file_name_and_path(tmp_path: Path) -> None:
    write(tmp_path, "one.config", "CONFIG_A=y\n")
    assert fragments.locate("one", tmp_path) == tmp_path / "one.config"
    assert fragments.locate("one.config", tmp_path) == tmp_path / "one.config"
    assert fragments.locate(str(tmp_path / "one.config"), tmp_path) == tmp_path / "one.config"
    with pytest.raises(UserError, match=r"unknown config fragment 'two': choose from one"):
        fragments.locate("two", tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        fragments.locate(str(tmp_path / "missing.config"), tmp_path)


def test_survived_compares_values_and_hex_numerically() -> None:
    config = {"A": "y", "B": "m", "H": "0x1000", "S": '"x"'}
    s = lambda sym, val: Setting(sym, val, Path("f.config"), 1)  # noqa: E731
    assert fragments.survived(s("A", "y"), config)
    assert not fragments.survived(s("B", "y"), config)
    assert fragments.survived(s("Z", "n"), config)
    assert not fragments.survived(s("A", "n"), config)
    assert fragments.survived(s("H", "0x01000"), config)
    assert fragments.survived(s("S", '"x"'), config)
    assert not fragments.survived(s("S", '"y"'), config)


@pytest.mark.parametrize("name", ["boot", "bcc", "test_kmod", "dups", "dups-trace", "nodups", "debug"])
def test_shipped_fragment_is_small_commented_and_parses(name: str) -> None:
    path = fragments.locate(name)
    settings = fragments.read(path)
    lines = path.read_text().splitlines()
    comments = [line for line in lines if line.startswith("#") and not fragments.parse_line(line)]
    assert settings, f"{name} sets nothing"
    assert comments, f"{name} has no comment saying what it is for"
    assert len(settings) <= 100
    symbols = [s.symbol for s in settings]
    assert len(symbols) == len(set(symbols)), f"{name} sets an option twice"


def test_feature_fragments_say_what_they_mean() -> None:
    on = fragments.merge([fragments.locate("dups")])
    trace = fragments.merge([fragments.locate("dups-trace")])
    off = fragments.merge([fragments.locate("nodups")])
    assert on["MODULE_DEBUG_AUTOLOAD_DUPS"].value == "y"
    assert on["MODULE_DEBUG_AUTOLOAD_DUPS_TRACE"].value == "n"
    assert trace["MODULE_DEBUG_AUTOLOAD_DUPS_TRACE"].value == "y"
    assert off["MODULE_DEBUG_AUTOLOAD_DUPS"].value == "n"
    # The control differs from the feature-on set only in the feature.
    assert {k: v.value for k, v in on.items() if "AUTOLOAD_DUPS" not in k} == \
        {k: v.value for k, v in off.items() if "AUTOLOAD_DUPS" not in k}


def test_default_set_is_a_subset_of_the_captured_config() -> None:
    """The .config a real build made from the default set (captured into
    tests/data) has every option the fragments ask for."""
    config = fragments.read_config(CAPTURED)
    requested = fragments.merge([fragments.locate(n) for n in DEFAULT])
    assert fragments.dropped(requested, config) == []
    assert config["NR_CPUS"] == "512" and config["TEST_KMOD"] == "m"


def test_subset_check_finds_what_the_captured_config_lacks(tmp_path: Path) -> None:
    config = fragments.read_config(CAPTURED)
    extra = write(tmp_path, "extra.config",
                  "CONFIG_NR_CPUS=1024\nCONFIG_KASAN=y\n# CONFIG_SMP is not set\nCONFIG_TEST_KMOD=m\n")
    requested = fragments.merge([*(fragments.locate(n) for n in DEFAULT), extra])
    lost = {s.symbol: s.value for s in fragments.dropped(requested, config)}
    assert lost == {"NR_CPUS": "1024", "KASAN": "y", "SMP": "n"}
    # and the control set asks for the feature off, which the captured config has on
    control = fragments.merge([fragments.locate(n) for n in CONTROL])
    assert [s.symbol for s in fragments.dropped(control, config)] == ["MODULE_DEBUG_AUTOLOAD_DUPS"]
