import io
import re
import shutil
import tarfile
import zipfile

import pytest

from fewshot_apps import sources
from fewshot_apps.cli import main
from fewshot_apps.errors import CardError, DataError, DataMissingError
from fewshot_apps.paths import cache_file
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


def test_a_failed_download_says_where_to_put_the_file_by_hand(tmp_path, monkeypatch):
    def offline(url, target):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(sources, "_download", offline)
    plain = load_card("tox21", data_dir=tmp_path)
    with pytest.raises(sources.DownloadError) as err:
        fetch(plain)
    assert str(err.value) == (
        f"{plain.downloads[0].url}: download failed: <urlopen error [Errno -2] Name or service "
        f"not known>. Without network access here, download it elsewhere and save it as "
        f"{plain.path('data')}, or set FEWSHOT_DATA_DIR to a folder that holds tox21")
    archive = load_card("movielens-latest-small", data_dir=tmp_path)
    with pytest.raises(sources.DownloadError, match=(
            "extract its contents without its top 1 folder level\\(s\\) into "
            f"{re.escape(str(tmp_path / 'movielens' / 'ml-latest-small'))}, or set "
            "FEWSHOT_DATA_DIR to a folder that holds movielens-latest-small$")):
        fetch(archive)
    assert not any(tmp_path.rglob("*.csv*"))  # nothing half-written


# --------------------------------------------------------------------------- trust: escapes


def _card(folder, body, name="mine"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(f'name = "{name}"\ndomain = "molecules"\nformat = "molecules-csv"\n{body}')
    return path


def _serve(monkeypatch, archive):
    """Every download copies the local file ``archive`` (there is no network in tests)."""
    monkeypatch.setattr(sources, "_download", lambda url, target: shutil.copyfile(archive, target))


def test_download_dest_outside_the_root_is_refused_and_never_written(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    payload = tmp_path / "payload.csv"
    payload.write_text("smiles,assay,label\nCCO,A,1\n")
    _serve(monkeypatch, payload)
    for dest in ("../victim.txt", str(victim)):
        card = _card(tmp_path / "cards", f'[files]\ndata = "d.csv"\n[[download]]\n'
                     f'url = "https://example.org/d.csv"\ndest = "{dest}"\n')
        with pytest.raises(CardError, match=r"mine\.toml: \[\[download\]\] #1 dest = .* leaves "
                           r"the card's folder"):
            load_card(card)
        assert main(["data", "fetch", str(card), "--force"]) == 2
    # A card changed in code is checked again before anything is written.
    card = load_card(_card(tmp_path / "cards", '[files]\ndata = "d.csv"\n[[download]]\n'
                           'url = "https://example.org/d.csv"\ndest = "d.csv"\n'))
    card.downloads[0].dest = "../victim.txt"
    with pytest.raises(CardError, match=r"dest = '\.\./victim\.txt' leaves"):
        fetch(card, force=True)
    assert victim.read_text() == "keep me"


def test_plain_download_dest_must_name_a_file(tmp_path):
    card = _card(tmp_path, '[files]\ndata = "d.csv"\n[[download]]\n'
                 'url = "https://example.org/d.csv"\ndest = "."\n')
    with pytest.raises(CardError, match=r"dest = '\.' names the folder itself"):
        load_card(card)


def test_builtin_card_dest_stays_in_the_data_directory(tmp_path, monkeypatch):
    _serve(monkeypatch, tmp_path / "no-such-download")
    card = load_card("tox21", data_dir=tmp_path / "data")
    card.downloads[0].dest = "../../escaped.csv.gz"
    with pytest.raises(CardError, match=r"card tox21: .* leaves the data directory"):
        fetch(card, force=True)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "/etc/passwd"])
def test_only_http_downloads(tmp_path, url):
    card = _card(tmp_path, f'[files]\ndata = "d.csv"\n[[download]]\nurl = "{url}"\ndest = "d.csv"\n')
    with pytest.raises(CardError, match=r"url .*: only http:// and https:// downloads are allowed"):
        load_card(card)


def _tar(path, members):
    """A tar of (name, content) regular files, or (name, None, linkname) symbolic links."""
    with tarfile.open(path, "w") as tf:
        for name, content, *link in members:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link[0]
                tf.addfile(info)
            else:
                info.size = len(content)
                tf.addfile(info, io.BytesIO(content))
    return path


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, content, *mode in members:
            info = zipfile.ZipInfo(name)
            if mode:
                info.external_attr = mode[0] << 16
            zf.writestr(info, content)
    return path


def _archive_card(folder, kind, strip=0):
    return load_card(_card(folder, f'[files]\ndata = "pkg/d.csv"\n[[download]]\n'
                           f'url = "https://example.org/a.{kind}"\ndest = "pkg"\n'
                           f'archive = "{kind}"\nstrip = {strip}\n'))


def test_tar_member_with_an_absolute_name_is_refused(tmp_path, monkeypatch):
    outside = tmp_path / "outside" / "pwned.csv"
    _serve(monkeypatch, _tar(tmp_path / "a.tar", [("d.csv", b"ok"), (str(outside), b"evil")]))
    with pytest.raises(DataError, match=r"https://example\.org/a\.tar: archive member "
                       + re.escape(repr(str(outside))) + " would be written outside"):
        fetch(_archive_card(tmp_path / "cards", "tar"))
    assert not outside.exists()


def test_tar_links_and_climbing_members_are_refused(tmp_path, monkeypatch):
    _serve(monkeypatch, _tar(tmp_path / "a.tar", [("top/d.csv", b"smiles\n"), ("top/sub/e", b"")]))
    card = _archive_card(tmp_path / "ok", "tar", strip=1)
    assert fetch(card) == [tmp_path / "ok" / "pkg"]  # a well-formed archive still extracts
    assert card.path("data").read_bytes() == b"smiles\n"
    for members, problem in (
        ([("top/../../x.csv", b"evil")], "would be written outside"),
        ([("d.csv", None, "/etc/passwd")], "is a link"),
    ):
        _serve(monkeypatch, _tar(tmp_path / "a.tar", members))
        with pytest.raises(DataError, match=problem):
            fetch(_archive_card(tmp_path / "cards", "tar"))
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "cards" / "x.csv").exists()


@pytest.mark.parametrize(
    "member, mode",
    [("../d.csv", None), ("/abs/d.csv", None), ("C:/d.csv", None), ("..\\d.csv", None),
     ("d.csv", 0o120777)],
    ids=["dotdot", "absolute", "drive", "backslash", "symlink"],
)
def test_zip_members_leaving_the_destination_are_refused(tmp_path, monkeypatch, member, mode):
    _serve(monkeypatch, _zip(tmp_path / "a.zip", [("ok.csv", b"x"), (member, b"evil", mode)]
                             if mode else [("ok.csv", b"x"), (member, b"evil")]))
    with pytest.raises(DataError, match=r"https://example\.org/a\.zip: archive member "
                       + re.escape(repr(member))):
        fetch(_archive_card(tmp_path / "cards", "zip"))


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "my data", "", "x" * 101, "-x"])
def test_card_names_are_validated(tmp_path, name):
    path = tmp_path / "c.toml"
    path.write_text(f'name = "{name}"\ndomain = "molecules"\nformat = "molecules-csv"\n'
                    '[files]\ndata = "d.csv"\n')
    with pytest.raises(CardError, match=r"c\.toml: name .* is not a valid card name"):
        load_card(path)


def test_builtin_card_lookup_stays_in_the_card_folder():
    with pytest.raises(CardError, match=r"unknown data set '\.\./pyproject'"):
        load_card("../pyproject")


def test_cache_files_stay_in_the_cache_folder_whatever_the_name(tmp_path):
    from fewshot_apps.domains.molecules.dataset import load_molecule_dataset
    from fewshot_apps.sources import Card

    (tmp_path / "d.csv").write_text("smiles,assay,label\nCCO,A,1\nCCN,A,0\nCCC,B,1\nCCCl,B,0\n")
    cache = tmp_path / "deep" / "cache"
    card = Card(name="../../../escaped", domain="molecules", format="molecules-csv",
                root=tmp_path, files={"data": "d.csv"})
    load_molecule_dataset(card, cache_dir=cache, progress=False, workers=1, test_assays=["B"])
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "d.csv"]
    assert written and all(cache / "molecules" in p.parents for p in written)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in written)


def test_cache_file_names_are_hashed_and_sanitized(tmp_path):
    a = cache_file(tmp_path, "../../x y", "k", suffix=".npz")
    b = cache_file(tmp_path, "../../x_y", "k", suffix=".npz")
    assert a.parent == tmp_path and b.parent == tmp_path and a != b
    assert re.fullmatch(r"x_y-[0-9a-f]{40}\.npz", a.name)


@pytest.mark.parametrize(
    "path", ["../elsewhere.csv", "/etc/passwd", "~/d.csv", "~nosuchuser42/d.csv", "a/../../d.csv"]
)
def test_files_outside_the_card_root_are_refused(tmp_path, path):
    card = _card(tmp_path, f'[files]\ndata = "{path}"\n')
    with pytest.raises(CardError, match=r"mine\.toml: \[files\] data = .* leaves the card's folder"):
        load_card(card)


def test_files_inside_the_card_root_still_load(tmp_path):
    card = load_card(_card(tmp_path, '[files]\ndata = "sub/../d.csv"\nother = "./e.csv"\n'))
    assert card.path("data") == tmp_path / "d.csv" and card.path("other") == tmp_path / "e.csv"
    card.files["data"] = "../../d.csv"  # changed in code: checked when used
    with pytest.raises(CardError, match=r"\[files\] data = '\.\./\.\./d\.csv' leaves"):
        card.path("data")
