"""Reading which shared libraries an ELF library links against, without loading it.

Loading onnxruntime's GPU provider library to see whether it can run would crash the process
(see ``ganctl.inference.providers``); its DT_NEEDED entries, read from the file, name the
libraries it needs, which can be loaded safely instead.
"""

from __future__ import annotations

import struct
from pathlib import Path

SHT_DYNAMIC = 6
DT_NULL, DT_NEEDED = 0, 1


def needed(library: str | Path) -> list[str] | None:
    """The DT_NEEDED entries (sonames) of a 64-bit little-endian ELF shared library; None if unreadable.

    Read from the section headers: the SHT_DYNAMIC section and the string table it links to.
    """
    try:
        with open(library, "rb") as handle:
            header = handle.read(64)
            if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
                return None
            shoff, = struct.unpack_from("<Q", header, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", header, 0x3A)
            handle.seek(shoff)
            table = handle.read(shentsize * shnum)
            sections = [struct.unpack_from("<IIQQQQII", table, i * shentsize) for i in range(shnum)]
            dynamic = next((sec for sec in sections if sec[1] == SHT_DYNAMIC), None)
            if dynamic is None:
                return []
            handle.seek(dynamic[4])
            entries = handle.read(dynamic[5])
            strtab = sections[dynamic[6]]
            handle.seek(strtab[4])
            strings = handle.read(strtab[5])
    except (OSError, struct.error, IndexError):
        return None
    sonames = []
    for offset in range(0, len(entries) - 15, 16):
        tag, value = struct.unpack_from("<qQ", entries, offset)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            sonames.append(strings[value : strings.index(b"\0", value)].decode())
    return sonames
