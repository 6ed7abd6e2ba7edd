"""Bad-input corpus: dataset cards, downloaded archives and cache files.

Each case builds one bad input in a temporary folder and returns the message the user sees
(an error's text, a read-report note or what was written on stderr) together with the
fragments that message must hold: the file, card or URL it is about and the problem.
Nothing here touches the network: downloads copy a local file.
"""

from __future__ import annotations

import io
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from fewshot_apps import sources
from fewshot_apps.errors import FewshotError
from fewshot_apps.sources import fetch, load_card

URL = "https://example.org/files/archive"
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def error_of(call) -> str:
    """The text of the FewshotError ``call`` raises (any other outcome fails the test)."""
    with pytest.raises(FewshotError) as info:
        call()
    return str(info.value)


def write_card(folder: Path, body: str, *, name: str = "mine", header: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "card.toml"
    head = f'name = "{name}"\ndomain = "molecules"\nformat = "molecules-csv"\n' if header else ""
    path.write_text(head + body)
    return path


def serve(monkeypatch, payload: Path) -> None:
    monkeypatch.setattr(sources, "_download", lambda url, target: shutil.copyfile(payload, target))


def archive_card(folder: Path, kind: str) -> Path:
    return write_card(folder, f'[files]\ndata = "pkg/d.csv"\n[[download]]\nurl = "{URL}.{kind}"\n'
                              f'dest = "pkg"\narchive = "{kind}"\n')


def tar_of(path: Path, name: str, content: bytes = b"x", link: str | None = None) -> Path:
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo(name)
        if link is not None:
            info.type, info.linkname = tarfile.SYMTYPE, link
            tf.addfile(info)
        else:
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
    return path


def zip_of(path: Path, name: str, mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, b"x")
    return path


# --------------------------------------------------------------------------- cards


@case
def not_toml(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, "name = \n", header=False)
    return error_of(lambda: load_card(card)), [f"{card}: not valid TOML"]


@case
def card_without_name(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, 'domain = "molecules"\nformat = "x"\n[files]\n', header=False)
    return error_of(lambda: load_card(card)), [f"{card}: the card has no 'name' key"]


@case
def unknown_domain(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, 'name = "x"\ndomain = "images"\nformat = "x"\n[files]\n',
                      header=False)
    return error_of(lambda: load_card(card)), [
        f"{card}: domain must be one of 'molecules', 'recsys', not 'images'"]


@case
def name_with_path_separators(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, '[files]\ndata = "d.csv"\n', name="../../x")
    return error_of(lambda: load_card(card)), [
        f"{card}: name '../../x' is not a valid card name", "no path separators or '..'"]


@case
def name_with_odd_characters(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, '[files]\ndata = "d.csv"\n', name="my data!")
    return error_of(lambda: load_card(card)), [f"{card}: name 'my data!' is not a valid card name"]


@case
def builtin_name_climbing_out(tmp_path, monkeypatch, capsys):
    return error_of(lambda: load_card("../pyproject")), ["unknown data set '../pyproject'"]


@case
def download_dest_climbing_out(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, f'[files]\ndata = "d.csv"\n[[download]]\nurl = "{URL}"\n'
                                'dest = "../../victim.txt"\n')
    return error_of(lambda: load_card(card)), [
        f"{card}: [[download]] #1 dest = '../../victim.txt' leaves the card's folder {tmp_path}"]


@case
def download_dest_absolute(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, f'[files]\ndata = "d.csv"\n[[download]]\nurl = "{URL}"\n'
                                'dest = "/etc/victim"\n')
    return error_of(lambda: load_card(card)), [
        f"{card}: [[download]] #1 dest = '/etc/victim' leaves the card's folder"]


@case
def download_file_url(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, '[files]\ndata = "d.csv"\n[[download]]\n'
                                'url = "file:///etc/passwd"\ndest = "d.csv"\n')
    return error_of(lambda: load_card(card)), [
        f"{card}: [[download]] #1 url 'file:///etc/passwd': only http:// and https:// "
        "downloads are allowed"]


@case
def unknown_archive_kind(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, f'[files]\ndata = "d.csv"\n[[download]]\nurl = "{URL}"\n'
                                'dest = "d"\narchive = "rar"\n')
    return error_of(lambda: load_card(card)), [
        f"{card}: [[download]] #1 archive 'rar' is not one of none, zip, tar, tar.gz"]


@case
def unknown_download_key(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, f'[files]\ndata = "d.csv"\n[[download]]\nurl = "{URL}"\n'
                                'dest = "d.csv"\nmirror = "x"\n')
    return error_of(lambda: load_card(card)), [f"{card}: [[download]] #1 has unknown keys ['mirror']"]


@case
def malformed_sha256(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, f'[files]\ndata = "d.csv"\n[[download]]\nurl = "{URL}"\n'
                                'dest = "d.csv"\nsha256 = "abc"\n')
    return error_of(lambda: load_card(card)), [f"{card}: [[download]] #1 sha256 must be 64 hex digits"]


@case
def files_path_absolute(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, '[files]\ndata = "/etc/passwd"\n')
    return error_of(lambda: load_card(card)), [
        f"{card}: [files] data = '/etc/passwd' leaves the card's folder {tmp_path}"]


@case
def files_path_climbing_out(tmp_path, monkeypatch, capsys):
    card = write_card(tmp_path, '[files]\ndata = "sub/../../d.csv"\n')
    return error_of(lambda: load_card(card)), [
        f"{card}: [files] data = 'sub/../../d.csv' leaves the card's folder"]


@case
def files_key_missing_on_disk(tmp_path, monkeypatch, capsys):
    card = load_card(write_card(tmp_path, '[files]\ndata = "d.csv"\n'))
    return error_of(card.require_present), [
        f"data set 'mine' is not in {tmp_path}: missing {tmp_path / 'd.csv'}",
        "fix the card's [files] paths"]


# --------------------------------------------------------------------------- downloads


@case
def sha256_mismatch(tmp_path, monkeypatch, capsys):
    (tmp_path / "payload").write_bytes(b"smiles\n")
    serve(monkeypatch, tmp_path / "payload")
    card = load_card(write_card(tmp_path / "c", f'[files]\ndata = "d.csv"\n[[download]]\n'
                                                f'url = "{URL}"\ndest = "d.csv"\nsha256 = "{"0" * 64}"\n'))
    return error_of(lambda: fetch(card)), [f"{URL}: sha256 mismatch: expected {'0' * 64}"]


@case
def tar_member_absolute(tmp_path, monkeypatch, capsys):
    serve(monkeypatch, tar_of(tmp_path / "a.tar", str(tmp_path / "pwned")))
    card = load_card(archive_card(tmp_path / "c", "tar"))
    message = error_of(lambda: fetch(card))
    assert not (tmp_path / "pwned").exists()
    return message, [f"{URL}.tar: archive member '{tmp_path / 'pwned'}' would be written "
                     "outside the destination"]


@case
def tar_member_climbing_out(tmp_path, monkeypatch, capsys):
    serve(monkeypatch, tar_of(tmp_path / "a.tar", "a/../../pwned"))
    card = load_card(archive_card(tmp_path / "c", "tar"))
    return error_of(lambda: fetch(card)), [
        f"{URL}.tar: archive member 'a/../../pwned' would be written outside"]


@case
def tar_symlink_member(tmp_path, monkeypatch, capsys):
    serve(monkeypatch, tar_of(tmp_path / "a.tar", "d.csv", link="/etc/passwd"))
    card = load_card(archive_card(tmp_path / "c", "tar"))
    return error_of(lambda: fetch(card)), [
        f"{URL}.tar: archive member 'd.csv' is a link (to '/etc/passwd')"]


@case
def zip_member_climbing_out(tmp_path, monkeypatch, capsys):
    serve(monkeypatch, zip_of(tmp_path / "a.zip", "../pwned"))
    card = load_card(archive_card(tmp_path / "c", "zip"))
    return error_of(lambda: fetch(card)), [
        f"{URL}.zip: archive member '../pwned' would be written outside"]


@case
def zip_member_with_drive_letter(tmp_path, monkeypatch, capsys):
    serve(monkeypatch, zip_of(tmp_path / "a.zip", "C:/Windows/pwned"))
    card = load_card(archive_card(tmp_path / "c", "zip"))
    return error_of(lambda: fetch(card)), [
        f"{URL}.zip: archive member 'C:/Windows/pwned' would be written outside"]


@case
def zip_symlink_member(tmp_path, monkeypatch, capsys):
    serve(monkeypatch, zip_of(tmp_path / "a.zip", "d.csv", mode=0o120777))
    card = load_card(archive_card(tmp_path / "c", "zip"))
    return error_of(lambda: fetch(card)), [f"{URL}.zip: archive member 'd.csv' is a symbolic link"]


@case
def zip_that_is_not_a_zip(tmp_path, monkeypatch, capsys):
    (tmp_path / "payload").write_bytes(b"<html>not found</html>")
    serve(monkeypatch, tmp_path / "payload")
    card = load_card(archive_card(tmp_path / "c", "zip"))
    return error_of(lambda: fetch(card)), [f"{URL}.zip: not a readable zip archive"]


# --------------------------------------------------------------------------- caches


def recsys_card(folder: Path, shift: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{u},{i},{1 + (u * 7 + i + shift) % 5},{1_600_000_000 + 100 * u + i}"
            for u in range(12) for i in range(25)]
    (folder / "ratings.csv").write_text("user,item,rating,timestamp\n" + "\n".join(rows) + "\n")
    card = folder / "mine.toml"
    card.write_text('name = "mine"\ndomain = "recsys"\nformat = "interactions-csv"\n'
                    '[files]\nratings = "ratings.csv"\n[split]\nsupport_sizes = [3, 5]\n'
                    'min_eval_ratings = 10\n[options]\nrating_scale = [1, 5]\n')
    return card


def spoiled_recsys_cache(tmp_path: Path, spoil) -> tuple[str, Path]:
    """Build the cache, spoil its file, load again: the note the user is shown, and the file."""
    from fewshot_apps.domains.recsys.dataset import load_recsys_dataset

    card, cache = recsys_card(tmp_path / "data"), tmp_path / "cache"
    assert not load_recsys_dataset(card, cache_dir=cache).read_cached
    (target,) = (cache / "recsys").iterdir()
    spoil(target)
    again = load_recsys_dataset(card, cache_dir=cache)
    assert not again.read_cached and len(again.data.ratings) == 300  # rebuilt from the files
    assert load_recsys_dataset(card, cache_dir=cache).read_cached  # and written back
    return "\n".join(again.report.notes), target


@case
def recsys_cache_truncated(tmp_path, monkeypatch, capsys):
    def spoil(target):
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])

    notes, target = spoiled_recsys_cache(tmp_path, spoil)
    return notes, [f"the cache file {target} was unusable", "rebuilt it"]


class _RunsCode:
    """Unpickling this creates ``marker``: what a planted cache file could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@case
def recsys_cache_swapped_for_a_pickle(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "code-ran"
    notes, target = spoiled_recsys_cache(
        tmp_path, lambda t: t.write_bytes(pickle.dumps(_RunsCode(marker))))
    assert not marker.exists(), "a pickle planted in the cache directory ran code"
    return notes, [f"the cache file {target} was unusable", "rebuilt it"]


@case
def recsys_cache_of_other_files(tmp_path, monkeypatch, capsys):
    from fewshot_apps.domains.recsys.dataset import load_recsys_dataset

    load_recsys_dataset(recsys_card(tmp_path / "other", shift=1), cache_dir=tmp_path / "c2")
    (foreign,) = (tmp_path / "c2" / "recsys").iterdir()
    notes, target = spoiled_recsys_cache(tmp_path, lambda t: shutil.copyfile(foreign, t))
    return notes, [f"the cache file {target} was unusable (written for other files or settings)"]


@case
def molecule_cache_truncated(tmp_path, monkeypatch, capsys):
    from fewshot_apps.domains.molecules.dataset import load_molecule_dataset

    monkeypatch.setenv("FEWSHOT_CACHE_DIR", str(tmp_path / "cache"))
    csv = tmp_path / "assays.csv"
    csv.write_text("smiles,assay,label\nCCO,A,1\nCCN,A,0\nCCC,B,1\nCCCl,B,0\n")
    load_molecule_dataset(csv, progress=False, workers=1, test_assays=["B"])
    (target,) = (tmp_path / "cache" / "molecules").iterdir()
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    capsys.readouterr()
    ds = load_molecule_dataset(csv, progress=False, workers=1, test_assays=["B"])
    assert len(ds.store) == 4 and ds.timings["all"]["source"] == "featurized"  # rebuilt
    again = load_molecule_dataset(csv, progress=False, workers=1, test_assays=["B"])
    assert again.timings["all"]["source"] == "cache"  # and written back
    return capsys.readouterr().err, [f"the cache file {target} was unusable", "rebuilding it"]


@case
def molecule_cache_dir_not_writable(tmp_path, monkeypatch, capsys):
    from fewshot_apps.domains.molecules.dataset import load_molecule_dataset

    # Under a regular file no folder can be made, even by root (for whom chmod 0o555 is no bar).
    (tmp_path / "a-file").write_text("")
    cache = tmp_path / "a-file" / "cache"
    monkeypatch.setenv("FEWSHOT_CACHE_DIR", str(cache))
    csv = tmp_path / "assays.csv"
    csv.write_text("smiles,assay,label\nCCO,A,1\nCCN,A,0\nCCC,B,1\nCCCl,B,0\n")
    for _ in range(2):
        ds = load_molecule_dataset(csv, progress=False, workers=1, test_assays=["B"])
        assert len(ds.store) == 4 and ds.timings["all"]["source"] == "featurized"
    err = capsys.readouterr().err
    assert err.count("is not writable") == 1  # once, not per load
    return err, [f"the cache directory {cache / 'molecules'} is not writable", "working in memory"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, monkeypatch, capsys):
    message, fragments = CASES[name](tmp_path, monkeypatch, capsys)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Traceback" not in message
