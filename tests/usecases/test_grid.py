"""Where a connection hangs (usecases/grid.py): the street rule UC1, UC4 and UC9 use,
and a confirmed UC7 correction taking its place (issue 19)."""

from __future__ import annotations

from meetpunt.usecases.grid import GridSpot, Neighbour, probable_feeders, street_feeders


def area() -> list[Neighbour]:
    """K1 runs along Dorpsstraat, K2 along Kerkweg; two Dorpsstraat houses are
    registered on K2."""
    out = [Neighbour(f"D{k}", GridSpot("OS1", "K1"), "Dorpsstraat", True) for k in range(5)]
    out += [Neighbour(f"W{k}", GridSpot("OS1", "K2"), "Kerkweg", True) for k in range(5)]
    out += [Neighbour(f"X{k}", GridSpot("OS1", "K2"), "Dorpsstraat", True) for k in range(2)]
    return out


def test_the_street_rule_moves_a_meter_to_its_streets_feeder() -> None:
    placed = probable_feeders(area())
    assert placed["X0"] == placed["X1"] == "K1"  # a suspected GIS feeder error
    assert placed["W0"] == "K2" and placed["D0"] == "K1"


def test_a_confirmed_uc7_correction_is_the_grid_position_not_the_street_rule() -> None:
    """X0's registration on K2 is a person-confirmed UC7 correction (it measured the
    cable): the street rule must not move it back; X1, without a UC7 result, still
    falls back to the street rule."""
    placed = probable_feeders(area(), confirmed={"X0"})
    assert placed["X0"] == "K2"
    assert placed["X1"] == "K1"
    over_substations = street_feeders(area(), confirmed={"X0"})
    assert over_substations == placed
