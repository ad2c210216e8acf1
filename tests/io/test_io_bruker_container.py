"""The Bruker SFS container check (``.bcf``) before rosettasciio parses the file.

No real ``.bcf`` hypermap is available here, so the container is written by ``write_sfs``
(the layout rosettasciio's own SFS reader reads: the first test reads the files back through it).
"""

from __future__ import annotations

import struct

import pytest
from xrfio_fixtures import write_sfs

from xrfcore.errors import ScanReadError
from xrfcore.io import open_scan
from xrfcore.io.bruker import check_sfs

FILES = {"EDSDatabase/HeaderData": b"<?xml version='1.0'?><TRTBase>" + b"x" * 5000 + b"</TRTBase>",
         "EDSDatabase/SpectrumData0": bytes(range(256)) * 60}


def test_written_container_reads_back_through_rosettasciio(tmp_path):
    from rsciio.bruker._api import SFS_reader

    p = write_sfs(tmp_path / "map.bcf", FILES)
    sfs = SFS_reader(str(p))
    for name, data in FILES.items():
        assert sfs.get_file(name).get_as_BytesIO_string().getvalue()[: len(data)] == data
    check_sfs(p)  # a sound container passes


def test_truncated_container_is_refused_at_every_cut(tmp_path):
    p = write_sfs(tmp_path / "map.bcf", FILES)
    data = p.read_bytes()
    cut_file = tmp_path / "cut.bcf"
    last_data = data.rindex(bytes(range(200, 256))) + 56  # end of SpectrumData0's last byte
    for cut in range(64, last_data, 211):
        cut_file.write_bytes(data[:cut])
        with pytest.raises(ScanReadError, match=r"cut\.bcf: .*(truncated|cut short)"):
            check_sfs(cut_file)


def test_open_scan_on_a_truncated_container_is_a_clean_error(tmp_path):
    p = write_sfs(tmp_path / "map.bcf", FILES)
    data = p.read_bytes()[: 3 * 4096]
    p.write_bytes(data)
    with pytest.raises(ScanReadError, match=r"map\.bcf: .*truncated"):
        open_scan(p)
    assert p.read_bytes() == data


def test_damaged_content_in_a_sound_container_is_a_clean_error(tmp_path):
    p = write_sfs(tmp_path / "map.bcf", FILES)
    with pytest.raises(ScanReadError, match=r"map\.bcf: rosettasciio cannot read this Bruker file"):
        open_scan(p)


def test_folder_loop_and_huge_sizes_are_refused(tmp_path):
    p = write_sfs(tmp_path / "map.bcf", {"a/b": b"123"})
    data = bytearray(p.read_bytes())
    chunk = struct.unpack_from("<I", data, 0x128)[0]
    tree = struct.unpack_from("<I", data, 0x140)[0]
    item0 = chunk * tree + 0x138
    struct.pack_into("<i", data, item0 + 40, 1)  # folder "a" now has parent "b": a loop
    p.write_bytes(bytes(data))
    with pytest.raises(ScanReadError, match="loop"):
        check_sfs(p)
    struct.pack_into("<i", data, item0 + 40, -1)
    struct.pack_into("<Q", data, item0 + 512 + 4, 2**60)  # file "b" claims 2**60 bytes
    p.write_bytes(bytes(data))
    with pytest.raises(ScanReadError, match="more than the container holds"):
        check_sfs(p)
