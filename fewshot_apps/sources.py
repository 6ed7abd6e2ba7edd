"""Dataset cards: what a data set is, where it comes from, and what its content must be.

A card is a TOML file (``datasets/<name>.toml`` in the source tree, shipped in the package as
``fewshot_apps.cards``). A user's own card is any ``*.toml`` path with the same keys whose
file paths are relative to the card's folder.

Keys::

    name, domain ("molecules" | "recsys"), format, title, description, licence, citation
    homepage
    [files]            logical name -> path (relative to the data directory, or to the
                       card's folder for a user's card)
    [[download]]       url, dest (relative to the data directory), sha256 (optional),
                       archive ("none" | "zip" | "tar" | "tar.gz"), strip (leading path
                       parts to drop when extracting)
    [expected]         content checks (rows, tasks, labels ...), read by the domain reader
    [split]            the default few-shot task split, read by the domain

Validity is decided by content, not bytes (copies may be recompressed or reordered): the
domain reader checks row counts, task names and label counts against ``[expected]``. A sha256
applies only to an archive just downloaded.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from fewshot_apps.errors import CardError, DataError, DataMissingError
from fewshot_apps.paths import data_dir as default_data_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class Download:
    url: str
    dest: str
    sha256: str | None = None
    archive: str = "none"
    strip: int = 0


@dataclass
class Card:
    """A parsed dataset card. ``root`` is the folder its relative file paths start from."""

    name: str
    domain: str
    format: str
    root: Path
    title: str = ""
    description: str = ""
    licence: str = ""
    citation: str = ""
    homepage: str = ""
    files: dict[str, str] = field(default_factory=dict)
    downloads: list[Download] = field(default_factory=list)
    expected: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    source: Path | None = None

    def path(self, key: str) -> Path:
        """Absolute path of the file or folder the card calls ``key``."""
        if key not in self.files:
            raise CardError(f"card {self.name!r} names no file {key!r} (has {sorted(self.files)})")
        p = Path(self.files[key]).expanduser()
        return p if p.is_absolute() else self.root / p

    def missing_files(self) -> list[Path]:
        return [self.path(k) for k in self.files if not self.path(k).exists()]

    @property
    def is_present(self) -> bool:
        return not self.missing_files()

    def require_present(self) -> None:
        missing = self.missing_files()
        if missing:
            how = (
                f"run `fewshot-apps data fetch {self.name}`"
                if self.downloads
                else "put the files there or fix the card's [files] paths"
            )
            raise DataMissingError(
                f"data set {self.name!r} is not in {self.root}: missing "
                + ", ".join(str(m) for m in missing[:3])
                + (" ..." if len(missing) > 3 else "")
                + f"; {how} (or set FEWSHOT_DATA_DIR to a folder that has it)"
            )


def bundled_folder(package: str, source_folder: str):
    """A folder of TOML files shipped with the package, or the checkout's copy of it.

    In a source checkout the files live in a top-level folder (``datasets/``,
    ``benchmarks/``); a built wheel carries them as the package ``package``.
    """
    checkout = Path(__file__).resolve().parent.parent / source_folder
    if checkout.is_dir():
        return checkout
    return resources.files(package)


def _card_resources():
    return bundled_folder("fewshot_apps.cards", "datasets")


def builtin_card_names() -> list[str]:
    return sorted(
        p.name[: -len(".toml")] for p in _card_resources().iterdir() if p.name.endswith(".toml")
    )


def parse_card(text: str, *, origin: str, root: Path, source: Path | None = None) -> Card:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CardError(f"{origin}: not valid TOML: {exc}") from None
    for key in ("name", "domain", "format", "files"):
        if key not in raw:
            raise CardError(f"{origin}: the card has no {key!r} key")
    if raw["domain"] not in ("molecules", "recsys"):
        raise CardError(f"{origin}: domain must be 'molecules' or 'recsys', not {raw['domain']!r}")
    downloads = [Download(**d) for d in raw.get("download", [])]
    known = {
        "name", "domain", "format", "title", "description", "licence", "citation", "homepage",
        "files", "download", "expected", "split", "options",
    }
    unknown = set(raw) - known
    if unknown:
        raise CardError(f"{origin}: unknown keys {sorted(unknown)}")
    return Card(
        name=raw["name"],
        domain=raw["domain"],
        format=raw["format"],
        root=root,
        title=raw.get("title", ""),
        description=raw.get("description", "").strip(),
        licence=raw.get("licence", ""),
        citation=raw.get("citation", "").strip(),
        homepage=raw.get("homepage", ""),
        files=dict(raw["files"]),
        downloads=downloads,
        expected=raw.get("expected", {}),
        split=raw.get("split", {}),
        options=raw.get("options", {}),
        source=source,
    )


def load_card(name_or_path: str | Path, data_dir: str | Path | None = None) -> Card:
    """A built-in card by name, or a user's card from a ``.toml`` path."""
    text_path = Path(name_or_path)
    if str(name_or_path).endswith(".toml") or text_path.suffix == ".toml":
        if not text_path.exists():
            raise CardError(f"{text_path}: no such card file")
        text = text_path.read_text(encoding="utf-8")
        return parse_card(
            text, origin=str(text_path), root=text_path.resolve().parent, source=text_path
        )
    name = str(name_or_path)
    resource = _card_resources() / f"{name}.toml"
    if not resource.is_file():
        raise CardError(
            f"unknown data set {name!r}; known: {', '.join(builtin_card_names())} "
            "(or give a path to your own card.toml)"
        )
    return parse_card(
        resource.read_text(encoding="utf-8"),
        origin=f"card {name}",
        root=default_data_dir(data_dir),
    )


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _download(url: str, target: Path) -> None:
    from fewshot_apps.progress import progress_bar

    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (public https URL)
        total = int(response.headers.get("Content-Length") or 0) or None
        with open(target, "wb") as out, progress_bar(
            total=total, unit="B", unit_scale=True, desc=Path(url).name or url
        ) as bar:
            while block := response.read(1 << 16):
                out.write(block)
                bar.update(len(block))


def _extract(archive: Path, kind: str, dest: Path, strip: int) -> None:
    def place(member_name: str) -> Path | None:
        parts = Path(member_name).parts[strip:]
        if not parts or ".." in parts:
            return None
        return dest.joinpath(*parts)

    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                out = place(info.filename)
                if out is None or info.is_dir():
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    elif kind in ("tar", "tar.gz"):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                out = place(member.name)
                if out is None or not member.isfile():
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                assert src is not None
                with src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    else:
        raise CardError(f"unknown archive kind {kind!r}")


def fetch(card: Card, *, force: bool = False) -> list[Path]:
    """Download what the card lists into the data directory; returns the paths written.

    Touches no network when the card's files are all there. Never overwrites or deletes a
    file the user has: a download goes to a temporary file, and only missing targets are
    written.
    """
    if card.is_present and not force:
        return []
    if not card.downloads:
        card.require_present()
    written: list[Path] = []
    card.root.mkdir(parents=True, exist_ok=True)
    for dl in card.downloads:
        dest = card.root / dl.dest
        if dest.exists() and not force:
            continue
        with tempfile.TemporaryDirectory(dir=card.root, prefix=".fetch-") as tmp:
            tmp_file = Path(tmp) / "download"
            try:
                _download(dl.url, tmp_file)
            except OSError as exc:
                raise DataError(dl.url, f"download failed: {exc}") from None
            if dl.sha256:
                got = sha256_of(tmp_file)
                if got != dl.sha256:
                    raise DataError(
                        dl.url, f"sha256 mismatch: expected {dl.sha256}, downloaded {got}"
                    )
            if dl.archive == "none":
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(tmp_file), dest)
            else:
                staging = Path(tmp) / "extracted"
                _extract(tmp_file, dl.archive, staging, dl.strip)
                dest.mkdir(parents=True, exist_ok=True)
                for item in staging.iterdir():
                    target = dest / item.name
                    if not target.exists():
                        shutil.move(str(item), target)
            written.append(dest)
    card.require_present()
    return written
