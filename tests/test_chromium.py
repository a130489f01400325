"""peeklens._chromium: the one place the tools' headless Chromium is configured."""

from __future__ import annotations

import pytest

from peeklens import _chromium


def test_flags_keep_the_browser_headless_and_off_the_network():
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking"):
        assert flag in _chromium.CHROMIUM_FLAGS


def test_path_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PEEKLENS_CHROMIUM", str(tmp_path / "my-chromium"))
    assert _chromium.chromium_path() == tmp_path / "my-chromium"
    monkeypatch.delenv("PEEKLENS_CHROMIUM")
    assert str(_chromium.chromium_path()) == "/usr/bin/chromium"


def test_launch_says_how_to_install_a_missing_browser_and_passes_the_flags(monkeypatch, tmp_path):
    calls = []

    class FakeChromium:
        def launch(self, **kw):
            calls.append(kw)
            return "browser"

    class FakePlaywright:
        chromium = FakeChromium()

    monkeypatch.setenv("PEEKLENS_CHROMIUM", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="apt-get install -y chromium.*PEEKLENS_CHROMIUM"):
        _chromium.launch(FakePlaywright())
    assert calls == []
    exe = tmp_path / "chromium"
    exe.write_text("")
    monkeypatch.setenv("PEEKLENS_CHROMIUM", str(exe))
    assert _chromium.launch(FakePlaywright(), slow_mo=1) == "browser"
    assert calls == [
        {"executable_path": str(exe), "args": list(_chromium.CHROMIUM_FLAGS), "headless": True, "slow_mo": 1}
    ]
