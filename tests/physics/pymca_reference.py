"""Headless PyMca5 reference: expected line-group rates of a multilayer (the matrix spectrum's areas).

PyMca's matrix spectrum (``McaAdvancedFit.matrixSpectrum``) gets its peak areas from
``ConcentrationsTool.processFitResult(..., elementsfrommatrix=True)``, which calls
``Elements.getMultilayerFluorescence`` with the fit configuration's layers, excitation energies
and weights, attenuators, detector and angles, and multiplies each element's rate by its mass
fraction. We call the same function with the same inputs as our simulator.
"""

from __future__ import annotations


# Air as our detector model has it (mass fractions N, O, Ar), 1.205e-3 g/cm3
_AIR = {"N": 0.7553, "O": 0.2318, "Ar": 0.0128}


def pymca_group_areas(stack, instrument, library, tables) -> dict[tuple[str, str], float]:
    """Expected area (PyMca units) of each (element, 'K'/'L'/'M') group of the stack's elements."""
    from PyMca5.PyMcaPhysics.xrf import Elements

    if "XRFAir" not in Elements.Material:
        Elements.Material["XRFAir"] = {"Comment": "air", "CompoundList": list(_AIR),
                                       "CompoundFraction": list(_AIR.values()), "Density": 1.205e-3,
                                       "Thickness": 1.0}
    multilayer = []
    present: dict[str, set] = {}
    for i, ly in enumerate(stack.layers):
        comp = library.paint_elements(ly.composition)
        rho = ly.density_g_cm3 or library.paint_density(ly.composition)
        name = f"XRFLayer{i}_{abs(hash(ly)) % 10**8}"
        Elements.Material[name] = {"Comment": name, "CompoundList": list(comp),
                                   "CompoundFraction": list(comp.values()), "Density": rho,
                                   "Thickness": ly.thickness_um * 1e-4}
        multilayer.append([name, rho, ly.thickness_um * 1e-4])
        for el in comp:
            present.setdefault(el, set())
    groups = sorted({(ln.element, ln.group) for ln in tables.lines if ln.element in present})
    elist = sorted([[Elements.getz(e), e, g] for e, g in groups])
    keep = tables.weights > 0
    w = tables.weights[keep]
    attenuators = [["XRFAir", 1.205e-3, instrument.air_path_cm, 1.0],
                   ["Be", 1.848, instrument.detector_be_um * 1e-4, 1.0]]
    fl = Elements.getMultilayerFluorescence(
        multilayer, list(tables.e0[keep]), layerList=None, weightList=list(w / w.sum()), flagList=[1] * int(keep.sum()),
        fulloutput=1, beamfilters=[], attenuators=attenuators, userattenuators=[], elementsList=elist,
        alphain=instrument.angle_in_deg, alphaout=instrument.angle_out_deg, cascade=True,
        detector=["Si1", 2.33, instrument.detector_si_mm * 0.1], funnyfilters=[], forcepresent=0, secondary=False)
    out: dict[tuple[str, str], float] = {}
    for layer in fl[1:]:
        for el, d in layer.items():
            for key, rate in d["rates"].items():
                g = key.split()[0][0]
                out[(el, g)] = out.get((el, g), 0.0) + float(rate) * float(d["mass fraction"])
    return out


def our_group_areas(stack, instrument, library):
    """Our primary-fluorescence intensity per (element, group), and the tables used."""
    from xrfcore.physics import library_elements
    from xrfcore.physics.fluorescence import build_tables, intensities, stack_composition

    els = library_elements(library)
    _, mf, rt = stack_composition([stack], library, els)
    tables = build_tables(els, instrument)
    li, _, _ = intensities(mf, rt, tables)
    out: dict[tuple[str, str], float] = {}
    for ln, v in zip(tables.lines, li[0]):
        out[(ln.element, ln.group)] = out.get((ln.element, ln.group), 0.0) + float(v)
    return out, tables
