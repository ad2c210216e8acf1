"""Tests of the pigment library: the shipped data, formulas, lookup, validation, paint recipe."""

import json

import pytest

from xrfcore.errors import LibraryError
from xrfcore.library import (Pigment, element_mass_fractions, load_library, parse_formula, pymca_formula)


@pytest.fixture
def lib():
    return load_library()


def test_classes_follow_method_table(lib):
    assert lib.classes == ("CrG", "CrY", "CB", "EG", "IO", "LW", "PB", "RL", "CM", "VM", "ZW")
    assert lib.class_names[lib.classes.index("VM")] == "vermilion"
    assert lib.version >= 1


def test_labels_of_stand_ins_ground_and_binder(lib):
    assert lib.get("VG").label == "EG"
    assert lib.get("sodium arsenite").label == "EG"
    assert lib.get("CaCO3").label is None
    assert lib.get("OIL").label is None
    assert {p.abbr for p in lib.pigments_of_class("EG")} == {"EG", "VG", "SA"}


def test_every_pigment_has_density_source_and_colour(lib):
    for p in lib:
        assert p.density_g_cm3 > 0 and p.density_source
        assert p.colour.startswith("#") and len(p.colour) == 7


def test_get_is_case_insensitive_and_lists_known_names(lib):
    assert lib.get("vm") is lib.get("Vermilion")
    with pytest.raises(LibraryError, match="unknown pigment 'ultramarine'.*VM \\(vermilion\\)"):
        lib.get("ultramarine")


@pytest.mark.parametrize(
    "formula, counts",
    [
        ("2PbCO3.Pb(OH)2", {"Pb": 3, "C": 2, "O": 8, "H": 2}),
        ("Fe4[Fe(CN)6]3", {"Fe": 7, "C": 18, "N": 18}),
        ("Cu(CH3COO)2.3Cu(AsO2)2", {"Cu": 4, "C": 4, "H": 6, "O": 16, "As": 6}),
        ("CoO.Al2O3", {"Co": 1, "O": 4, "Al": 2}),
        ("Ca0.5Mg0.5CO3", {"Ca": 0.5, "Mg": 0.5, "C": 1, "O": 3}),
    ],
)
def test_parse_formula(formula, counts):
    assert parse_formula(formula) == pytest.approx(counts)


def test_mass_fractions_of_calcite():
    # CaCO3: Ca 40.078 / 100.087 (xraylib 4.3 atomic weights)
    f = element_mass_fractions("CaCO3")
    assert f["Ca"] == pytest.approx(40.078 / 100.0869, rel=1e-3)
    assert sum(f.values()) == pytest.approx(1.0)


def test_pymca_formula_has_explicit_counts():
    assert pymca_formula("CaCO3") == "Ca1C1O3"


@pytest.mark.parametrize("formula, match", [("PbXy3", "unknown element 'Xy'"), ("Pb(CO3", "unbalanced"),
                                            ("pbo", "cannot parse"), ("", "empty formula")])
def test_bad_formulas(formula, match):
    with pytest.raises(LibraryError, match=match):
        parse_formula(formula)


def test_add_validates_and_save_roundtrip(lib, tmp_path):
    with pytest.raises(LibraryError, match="density must be > 0"):
        lib.add(Pigment("smalt", "SM", "CoO.SiO2", 0.0))
    with pytest.raises(LibraryError, match="unknown element"):
        lib.add(Pigment("smalt", "SM", "CoO.Qq2", 2.5))
    with pytest.raises(LibraryError, match="used twice"):
        lib.add(Pigment("vermilion", "VM2", "HgS", 8.1))
    lib.add(Pigment("Naples yellow", "NY", "Pb2Sb2O7", 6.6, "approximate", "#fada5e", "", "NY"))
    assert lib.classes[-1] == "NY" and len(lib.classes) == 12
    path = tmp_path / "lib.json"
    lib.save(path)
    again = load_library(path)
    assert again.get("ny").formula == "Pb2Sb2O7"
    assert again.classes == lib.classes
    assert load_library().classes[-1] == "ZW"  # the shipped library is untouched
    assert json.loads(path.read_text())["version"] == lib.version


def test_bad_library_files(tmp_path):
    with pytest.raises(LibraryError, match="not found"):
        load_library(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LibraryError, match="not valid JSON"):
        load_library(tmp_path / "bad.json")


def test_paint_is_three_parts_pigment_one_part_binder(lib):
    hg_in_hgs = element_mass_fractions("HgS")["Hg"]
    paint = lib.paint_elements({"VM": 1.0})
    assert paint["Hg"] == pytest.approx(0.75 * hg_in_hgs)
    assert sum(paint.values()) == pytest.approx(1.0)
    # volume-additive density: 1/rho = 0.75/8.1 + 0.25/0.93
    assert lib.paint_density({"VM": 1.0}) == pytest.approx(1 / (0.75 / 8.1 + 0.25 / 0.93))
    # the ground is used neat
    assert lib.paint_density({"CaCO3": 1.0}) == pytest.approx(2.71)


def test_key_elements_from_table_and_from_formula():
    from xrfcore.library import Pigment, key_elements

    assert key_elements("EG") == ("Cu", "As") and key_elements("LW") == ("Pb",)
    lib = load_library()
    lib.add(Pigment(name="cadmium yellow", abbr="CY", formula="CdS", density_g_cm3=4.8, density_source="CRC",
                    colour="#ffd700", notes="", label="CY"))
    assert key_elements("CY", lib) == ("Cd",)  # S (Z 16) is too light to count
