"""Text files as people save them, decoded the one way every reader shares (the Generate tab, the `generate`
CLI, the Data tab's CSV files): a byte-order mark first (UTF-8, UTF-16 and UTF-32, little or big endian: what
Windows Notepad saves as "Unicode" and Excel as "Unicode text"), then the binary test (NUL bytes, which a
UTF-16 file without its mark also has), then UTF-8, then detection (charset-normalizer, which `requests`
already brings: GB18030 from a Chinese Excel, Shift-JIS, cp1252 with curly quotes). How each file was
decoded comes back with it, so the user is told.
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

from workbench.core.errors import DataError

# UTF-32 LE before UTF-16 LE: its mark FF FE 00 00 starts with UTF-16 LE's FF FE.
BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
HEAD_BYTES = 8192  # the binary test's window, as git's
DETECT_BYTES = 1 << 20  # detection reads the head of a large file: enough text to tell GB18030 from Big5
# charset-normalizer names several code pages that decode a text the same; the one people mean comes first.
PREFERRED = ("cp1252", "gb18030", "cp932", "shift_jis", "euc_kr", "big5", "cp1251", "iso8859_15")


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # a Python codec name: utf-8, utf-16-le, gb18030, cp932, ...
    how: str  # "utf-8" (plain, with or without its mark), "byte-order mark" or "detection"

    @property
    def note(self) -> str:
        """What the user is told: empty for plain UTF-8."""
        return "" if self.how == "utf-8" else f"{self.encoding} ({self.how})"


def bom(head: bytes) -> tuple[str, int] | None:
    """(the encoding, the mark's length) when the bytes start with a byte-order mark."""
    return next(((enc, len(mark)) for mark, enc in BOMS if head.startswith(mark)), None)


def check_not_binary(head: bytes) -> None:
    if b"\x00" in head[:HEAD_BYTES]:
        raise DataError("binary file (NUL bytes)")


def detect(data: bytes) -> str:
    """The encoding charset-normalizer finds for bytes that are not UTF-8; DataError when none fits."""
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None or best.encoding is None:
        raise DataError("not text in any encoding charset-normalizer knows")
    # A short text fits several code pages equally well ("crème" is "crčme" in cp1250): among the ties, the
    # code page people use most wins.
    fits = {enc for m in matches if m.chaos <= best.chaos and m.coherence >= best.coherence
            for enc in (m.encoding, *m.could_be_from_charset)}
    return next((enc for enc in PREFERRED if enc in fits), best.encoding)


def decode(data: bytes) -> Decoded:
    """The text of a whole file and how it was decoded; DataError saying why it is not text (empty, binary,
    or not text in any known encoding)."""
    if not data:
        raise DataError("empty file (0 bytes)")
    marked = bom(data)
    if marked is not None:
        enc, skip = marked
        try:  # UTF-8 with its mark (Notepad, Excel) is plain UTF-8 to the user: not worth a mention
            return Decoded(data[skip:].decode(enc), enc, "utf-8" if enc == "utf-8" else "byte-order mark")
        except UnicodeDecodeError as e:
            raise DataError(f"starts with a {enc} byte-order mark but is not {enc} text (byte {e.start + skip})"
                            ) from None
    check_not_binary(data)
    try:
        return Decoded(data.decode("utf-8"), "utf-8", "utf-8")
    except UnicodeDecodeError:
        pass
    enc = detect(data)
    try:
        return Decoded(data.decode(enc), enc, "detection")
    except (UnicodeDecodeError, LookupError):
        raise DataError(f"not text: it does not decode as {enc}, the closest encoding found") from None


def read_text(path: Path) -> Decoded:
    return decode(path.read_bytes())


def file_encoding(path: Path) -> Decoded:
    """How a file too large to hold whole is decoded, with an empty text: its byte-order mark, else UTF-8 when
    every byte is (a streaming check, about 0.6 s per GB), else detection on its head. The encoding is a codec
    that skips the mark (utf-8-sig, utf-16, utf-32), for readers given the file itself (pandas)."""
    with open(path, "rb") as f:
        head = f.read(DETECT_BYTES)
    if not head:
        raise DataError("empty file (0 bytes)")
    marked = bom(head)
    if marked is not None:
        if marked[0] == "utf-8":
            return Decoded("", "utf-8-sig", "utf-8")
        return Decoded("", marked[0][:6], "byte-order mark")  # utf-16 / utf-32: the codec reads the mark
    check_not_binary(head)
    if utf8_error(path) is None:
        return Decoded("", "utf-8", "utf-8")
    if len(head) == DETECT_BYTES and b"\n" in head:
        head = head[:head.rindex(b"\n") + 1]  # whole lines: a character cut in two misleads detection
    return Decoded("", detect(head), "detection")


def utf8_error(path: Path) -> tuple[int, int] | None:
    """(the first byte that is not UTF-8, its line number), or None when the whole file is UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 22)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                at = max(e.start, 0)  # position within the buffered bytes; close enough to name the line
                return chunk[at] if at < len(chunk) else 0, line + chunk[:at].count(b"\n")
            if not chunk:
                return None
            line += chunk.count(b"\n")
