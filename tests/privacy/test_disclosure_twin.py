"""The releases the aggregate use cases need still come out on a twin (PRV-6, issue 15):
UC11's load per postcode per day, UC13's per postcode per month, UC14's research set per
postcode-3 per month with calibrated noise."""

from __future__ import annotations

from pathlib import Path

from tests.privacy.twin_releases import legitimate_releases


def test_legitimate_releases_come_out_on_a_twin(tmp_path: Path) -> None:
    result = legitimate_releases(tmp_path, 150, 2)
    for name in ("UC11 pc4 per day", "UC13 pc4 per month", "UC14 pc3 per month"):
        assert result[name]["shown"] >= 1, (name, result[name])
    assert result["UC14 pc3 per month"]["noisy"]
    for cell in result["UC14 noise"]:
        # discrete Laplace: beyond 20 standard deviations has probability ~ e^-28
        assert cell["error_pct"] <= 20 * max(cell["noise_sd_pct"], 0.01)
