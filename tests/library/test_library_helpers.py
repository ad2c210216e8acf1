"""Tests of the library helpers the pages call: visible_elements and library_from_dict."""

import pytest

from xrfcore.errors import LibraryError
from xrfcore.library import library_from_dict, load_library, visible_elements


@pytest.fixture(scope="module")
def lib():
    return load_library()


def test_visible_elements_heaviest_fraction_first(lib):
    # PbCrO4: Pb 64 % by mass, Cr 16 %; O has no line the detector sees
    assert visible_elements(lib, "CrY") == ["Pb", "Cr"]
    assert visible_elements(lib, "VM") == ["Hg"]  # S-K (2.31 keV) lies below 2.8 keV
    assert "S" in visible_elements(lib, "VM", min_kev=2.0)


def test_visible_elements_pools_stand_ins(lib):
    # emerald green and its stand-ins verdigris (Cu) and sodium arsenite (As, Na): Na-K is too soft
    els = visible_elements(lib, "EG")
    assert set(els) == {"Cu", "As"}
    assert visible_elements(lib, "no such class") == []


def test_visible_elements_respects_tube_voltage(lib):
    # Sn-K (25 keV) needs the tube above the K edge (29.2 keV); Sn-L (3.4 keV) is always there
    assert "Sn" in visible_elements(lib, "CM", tube_kv=40.0)
    assert "Sn" in visible_elements(lib, "CM", tube_kv=40.0, min_kev=10.0)
    assert "Sn" not in visible_elements(lib, "CM", tube_kv=20.0, min_kev=10.0)


def test_library_from_dict_round_trip(lib):
    again = library_from_dict(lib.to_dict())
    assert again.to_dict() == lib.to_dict()


def test_library_from_dict_names_the_bad_row(lib):
    doc = lib.to_dict()
    doc["pigments"][2]["formula"] = "PbXx"
    name = doc["pigments"][2]["name"]
    with pytest.raises(LibraryError, match=rf"pigment 3 \({name!r}\).*unknown element"):
        library_from_dict(doc)
    doc = lib.to_dict()
    doc["pigments"][0]["density_g_cm3"] = -1
    with pytest.raises(LibraryError, match="pigment 1 .*density must be > 0"):
        library_from_dict(doc)
    doc = lib.to_dict()
    doc["pigments"][1]["colour_hex"] = "#fff"
    with pytest.raises(LibraryError, match="pigment 2 .*unknown one"):
        library_from_dict(doc)


def test_library_from_dict_names_the_missing_key(lib):
    doc = lib.to_dict()
    del doc["classes"]
    with pytest.raises(LibraryError, match="'classes'"):
        library_from_dict(doc)
    doc = lib.to_dict()
    doc["binder"] = "linseed"
    with pytest.raises(LibraryError, match="unknown pigment 'linseed'"):
        library_from_dict(doc)
