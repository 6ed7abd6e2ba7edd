"""Dataset cards: what a data set is, where it comes from, and what its content must be.

A card is a TOML file (``datasets/<name>.toml`` in the source tree, shipped in the package as
``fewshot_apps.cards``). A user's own card is any ``*.toml`` path with the same keys whose
file paths are relative to the card's folder.

Keys::

    name, domain (a registered domain: "molecules", "recsys", ...), format, title, description, licence, citation
    homepage
    [files]            logical name -> path (relative to the data directory, or to the
                       card's folder for a user's card; a path leaving it is refused)
    [[download]]       url (http:// or https:// only), dest (relative to the data
                       directory, inside it), sha256 (optional), archive ("none" | "zip" |
                       "tar" | "tar.gz"), strip (leading path parts to drop when extracting;
                       members that are links or leave the destination are refused)

``name`` is 1 to 100 letters, digits, ``.``, ``_`` or ``-``: it labels cache files.
    [expected]         content checks (rows, tasks, labels ...), read by the domain reader
    [split]            the default few-shot task split, read by the domain

Validity is decided by content, not bytes (copies may be recompressed or reordered): the
domain reader checks row counts, task names and label counts against ``[expected]``. A sha256
applies only to an archive just downloaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath

from fewshot_apps.core.registry import DOMAINS
from fewshot_apps.errors import CardError, DataError, DataMissingError
from fewshot_apps.paths import data_dir as default_data_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


ARCHIVE_KINDS = ("none", "zip", "tar", "tar.gz")
URL_SCHEMES = ("http://", "https://")
#: A card name: letters, digits, ``.``, ``_``, ``-`` (it names cache files and messages).
CARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class DownloadError(DataError):
    """A download or an archive from it is unusable; the message names the URL."""

    def __init__(self, url: str, problem: str):
        super().__init__(None, problem)
        self.url = url
        self.args = (f"{url}: {problem}",)

    def __str__(self) -> str:
        return self.args[0]


def inside(root: str | Path, relative: str | Path) -> Path | None:
    """``root / relative`` normalized, or None when it leaves ``root``.

    Lexical (``..`` and absolute paths count, symbolic links the user made are not followed),
    so a card cannot name a file outside its root, whatever the current folder.
    """
    base = Path(os.path.normpath(Path(root).expanduser().absolute()))
    try:
        full = Path(os.path.normpath(base / Path(relative).expanduser()))
    except RuntimeError:  # "~someone" with no such user: not a path inside root either
        return None
    return full if full == base or base in full.parents else None


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
        """Absolute path of the file or folder the card calls ``key`` (inside :attr:`root`)."""
        if key not in self.files:
            raise CardError(f"card {self.name!r} names no file {key!r} (has {sorted(self.files)})")
        p = inside(self.root, self.files[key])
        if p is None:
            raise CardError(_outside_message(
                str(self.source) if self.source else f"card {self.name}",
                f"[files] {key}", self.files[key], self.root, self.source is not None,
            ))
        return p

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


def _outside_message(origin: str, what: str, value: object, root: Path, own: bool) -> str:
    where = "the card's folder" if own else "the data directory"
    return (f"{origin}: {what} = {value!r} leaves {where} {root}; "
            f"it must be a relative path inside it, without '..'")


def _check_name(origin: str, name: object) -> str:
    if not isinstance(name, str) or not CARD_NAME.fullmatch(name) or ".." in name:
        raise CardError(
            f"{origin}: name {name!r} is not a valid card name: use 1 to 100 letters, digits, "
            "'.', '_' or '-' (starting with a letter or digit; no path separators or '..')"
        )
    return name


def _parse_download(origin: str, i: int, raw: object, root: Path, own: bool) -> Download:
    what = f"[[download]] #{i + 1}"
    if not isinstance(raw, dict):
        raise CardError(f"{origin}: {what} must be a table, not {raw!r}")
    unknown = set(raw) - {"url", "dest", "sha256", "archive", "strip"}
    if unknown:
        raise CardError(f"{origin}: {what} has unknown keys {sorted(unknown)}")
    for key in ("url", "dest"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise CardError(f"{origin}: {what} needs a {key!r} (a non-empty string)")
    dl = Download(**raw)
    if not dl.url.lower().startswith(URL_SCHEMES):
        raise CardError(
            f"{origin}: {what} url {dl.url!r}: only http:// and https:// downloads are allowed"
        )
    if dl.archive not in ARCHIVE_KINDS:
        raise CardError(
            f"{origin}: {what} archive {dl.archive!r} is not one of {', '.join(ARCHIVE_KINDS)}"
        )
    if not isinstance(dl.strip, int) or isinstance(dl.strip, bool) or dl.strip < 0:
        raise CardError(f"{origin}: {what} strip must be a whole number >= 0, not {dl.strip!r}")
    if dl.sha256 is not None and not (
        isinstance(dl.sha256, str) and re.fullmatch(r"[0-9a-fA-F]{64}", dl.sha256)
    ):
        raise CardError(f"{origin}: {what} sha256 must be 64 hex digits, not {dl.sha256!r}")
    target = inside(root, dl.dest)
    base = inside(root, ".")
    if target is None:
        raise CardError(_outside_message(origin, f"{what} dest", dl.dest, root, own))
    if target == base and dl.archive == "none":
        raise CardError(f"{origin}: {what} dest = {dl.dest!r} names the folder itself; a "
                        "download that is not an archive needs a file name")
    return dl


def parse_card(text: str, *, origin: str, root: Path, source: Path | None = None) -> Card:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CardError(f"{origin}: not valid TOML: {exc}") from None
    for key in ("name", "domain", "format", "files"):
        if key not in raw:
            raise CardError(f"{origin}: the card has no {key!r} key")
    _check_name(origin, raw["name"])
    if raw["domain"] not in DOMAINS:
        raise CardError(f"{origin}: domain must be one of {', '.join(map(repr, DOMAINS))}, "
                        f"not {raw['domain']!r}")
    own = source is not None
    if not isinstance(raw["files"], dict):
        raise CardError(f"{origin}: [files] must be a table of name = \"path\"")
    for key, value in raw["files"].items():
        if not isinstance(value, str) or not value.strip():
            raise CardError(f"{origin}: [files] {key} must be a path (a non-empty string), "
                            f"not {value!r}")
        if inside(root, value) is None:
            raise CardError(_outside_message(origin, f"[files] {key}", value, root, own))
    listed = raw.get("download", [])
    if not isinstance(listed, list):
        raise CardError(f"{origin}: download must be a list of [[download]] tables")
    downloads = [_parse_download(origin, i, d, root, own) for i, d in enumerate(listed)]
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
    if name not in builtin_card_names() or not resource.is_file():
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


def _member_path(url: str, name: str, dest: Path, strip: int) -> Path | None:
    """Where archive member ``name`` goes under ``dest`` (None: nothing left after ``strip``).

    Refuses (:class:`DownloadError`) a name that is absolute, has a drive letter, a ``..``
    part or a NUL, or otherwise lands outside ``dest``.
    """
    posix = name.replace("\\", "/")
    if "\0" in name or posix.startswith("/") or re.match(r"[A-Za-z]:", posix) or (
        ".." in posix.split("/")
    ):
        raise DownloadError(
            url, f"archive member {name!r} would be written outside the destination "
            "(absolute path, drive letter or '..'); refusing to extract this archive"
        )
    parts = PurePosixPath(posix).parts[strip:]
    if not parts:
        return None
    out = inside(dest, PurePosixPath(*parts))
    if out is None or out == inside(dest, "."):
        raise DownloadError(url, f"archive member {name!r} leaves the destination; refusing")
    return out


def _extract(archive: Path, kind: str, dest: Path, strip: int, url: str = "") -> None:
    """Extract the regular files of ``archive`` under ``dest``; refuse links, devices and
    members whose names leave ``dest`` (:class:`DownloadError` naming ``url`` and the member)."""
    url = url or str(archive)
    if kind == "zip":
        try:
            zf = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DownloadError(url, f"not a readable zip archive: {exc}") from None
        with zf:
            for info in zf.infolist():
                out = _member_path(url, info.filename, dest, strip)
                mode = (info.external_attr >> 16) & 0o170000
                if mode == 0o120000:
                    raise DownloadError(url, f"archive member {info.filename!r} is a symbolic "
                                             "link; links are not extracted, refusing")
                if out is None or info.is_dir():
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    elif kind in ("tar", "tar.gz"):
        try:
            tf = tarfile.open(archive)  # noqa: SIM115 (closed by the with below)
        except (tarfile.TarError, OSError) as exc:
            raise DownloadError(url, f"not a readable tar archive: {exc}") from None
        with tf:
            for member in tf.getmembers():
                out = _member_path(url, member.name, dest, strip)
                if member.issym() or member.islnk():
                    raise DownloadError(url, f"archive member {member.name!r} is a link (to "
                                             f"{member.linkname!r}); links are not extracted, refusing")
                if not (member.isfile() or member.isdir()):
                    raise DownloadError(url, f"archive member {member.name!r} is a device or "
                                             "other special file; refusing")
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                    try:
                        tarfile.data_filter(member, str(dest))
                    except tarfile.FilterError as exc:
                        raise DownloadError(url, f"archive member {member.name!r}: {exc}; "
                                                 "refusing") from None
                if out is None or member.isdir():
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                assert src is not None
                with src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    else:
        raise CardError(f"unknown archive kind {kind!r} (known: {', '.join(ARCHIVE_KINDS)})")


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
    origin = str(card.source) if card.source else f"card {card.name}"
    # Cards built or changed in code skip parse_card's checks: repeat them before writing.
    checked = [
        _parse_download(origin, i, vars(dl), card.root, card.source is not None)
        for i, dl in enumerate(card.downloads)
    ]
    card.root.mkdir(parents=True, exist_ok=True)
    for dl in checked:
        dest = inside(card.root, dl.dest)
        if dest.exists() and not force:
            continue
        with tempfile.TemporaryDirectory(dir=card.root, prefix=".fetch-") as tmp:
            tmp_file = Path(tmp) / "download"
            try:
                _download(dl.url, tmp_file)
            except OSError as exc:
                levels = (f" without its top {dl.strip} folder level(s)" if dl.strip else "")
                where = (f"extract its contents{levels} into {dest}" if dl.archive != "none"
                         else f"save it as {dest}")
                raise DownloadError(
                    dl.url, f"download failed: {exc}. Without network access here, download "
                    f"it elsewhere and {where}, or set FEWSHOT_DATA_DIR to a folder that "
                    f"holds {card.name}") from None
            if dl.sha256:
                got = sha256_of(tmp_file)
                if got != dl.sha256.lower():
                    raise DownloadError(
                        dl.url, f"sha256 mismatch: expected {dl.sha256}, downloaded {got}"
                    )
            if dl.archive == "none":
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(tmp_file), dest)
            else:
                staging = Path(tmp) / "extracted"
                staging.mkdir()
                _extract(tmp_file, dl.archive, staging, dl.strip, url=dl.url)
                dest.mkdir(parents=True, exist_ok=True)
                for item in staging.iterdir():
                    target = dest / item.name
                    if not target.exists():
                        shutil.move(str(item), target)
            written.append(dest)
    card.require_present()
    return written
