import pytest

from fewshot_apps import sources
from fewshot_apps.errors import CardError, DataMissingError
from fewshot_apps.sources import builtin_card_names, fetch, load_card


def test_builtin_cards_parse():
    names = builtin_card_names()
    assert {"tox21", "muv", "sider", "toxcast", "fsmol"} <= set(names)
    for name in names:
        card = load_card(name)
        assert card.downloads and card.licence and card.citation
        assert all(d.url.startswith("https://") for d in card.downloads)


def test_unknown_card_and_bad_toml(tmp_path):
    with pytest.raises(CardError, match="unknown data set 'nope'"):
        load_card("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(CardError, match="not valid TOML"):
        load_card(bad)


def test_missing_data_says_how_to_fetch(tmp_path):
    card = load_card("sider", data_dir=tmp_path)
    with pytest.raises(DataMissingError, match="fewshot-apps data fetch sider"):
        card.require_present()


def test_fetch_touches_no_network_when_present(data_dir, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(sources, "_download", no_network)
    assert fetch(load_card("tox21", data_dir=data_dir)) == []


def test_fetch_downloads_checks_sha_and_keeps_user_files(tmp_path, monkeypatch):
    payload = b"smiles,A\nCCO,1\n"

    def fake_download(url, target):
        target.write_bytes(payload)

    monkeypatch.setattr(sources, "_download", fake_download)
    card = load_card("tox21", data_dir=tmp_path)
    card.downloads[0].sha256 = "0" * 64
    with pytest.raises(Exception, match="sha256 mismatch"):
        fetch(card)
    assert not card.path("data").exists()
    card.downloads[0].sha256 = sources.hashlib.sha256(payload).hexdigest()
    assert fetch(card) == [card.path("data")]
    assert card.path("data").read_bytes() == payload
