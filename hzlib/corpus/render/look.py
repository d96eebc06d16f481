"""What an image looks like, as plain values: the material, setting and glyph-paint names and the
`Look` dataclass (serialisable with `Look.to_dict` / `Look.from_dict`, stored in the manifest)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

MATERIALS = ("granite", "marble", "sandstone", "bronze", "wood", "steel", "ceramic", "porcelain", "jade")
SETTINGS = ("museum", "courtyard", "garden", "plaza", "mountain", "temple", "street", "outback")
PAINTS = ("red", "gold", "black", "white", "green", "neon", "ochre")


@dataclass
class Look:
    """Everything about appearance, as plain values (serialisable with `to_dict` / `from_dict`)."""

    material: str = "granite"
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGB multiplier on the material's colour
    weathering: float = 0.2  # 0..1: dirt in crevices, streaks, lichen; patina on bronze
    glyph_paint: str | None = None  # None or one of PAINTS
    setting: str = "courtyard"
    azimuth: float = 35.0  # sun, degrees (0 = from the sculpture's front)
    elevation: float = 40.0  # sun, degrees above the horizon
    sun_intensity: float = 1.0
    warmth: float = 0.0  # -1 (cool, overcast/blue) .. +1 (warm, evening)
    ambient: float = 0.35  # sky/hemisphere light
    fog: float = 0.0  # 0..1, extinction 0.1 * fog per metre
    exposure: float = 1.0
    noise_sigma: float = 0.01  # sensor noise, fraction of full scale
    seed: int = 0  # texture placement (same in every view) and sensor noise
    vignette: float = 0.25  # darkening at the image corners
    blur: float = 0.5  # lens softness, 0..1 (weight of a 3x3 binomial blur)

    def __post_init__(self):
        if self.material not in MATERIALS:
            raise ValueError(f"unknown material {self.material!r}; one of {MATERIALS}")
        if self.setting not in SETTINGS:
            raise ValueError(f"unknown setting {self.setting!r}; one of {SETTINGS}")
        if self.glyph_paint is not None and self.glyph_paint not in PAINTS:
            raise ValueError(f"unknown glyph_paint {self.glyph_paint!r}; None or one of {PAINTS}")
        self.tint = tuple(float(c) for c in self.tint)
        if len(self.tint) != 3:
            raise ValueError("tint must have 3 components")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tint"] = list(self.tint)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Look":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown Look fields: {sorted(unknown)}")
        return cls(**d)
