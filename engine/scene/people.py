"""People facts: garment colours (upper / lower body) and posture, from the mask's shape and pixels.

A whole-mask colour of a person mixes skin, hair and clothes, so people get no `color`. Instead:

- Body regions come from the mask's own shape: for a figure seen whole (not cut by the frame),
  the torso band lies at UPPER_BAND of the mask's height (below head and hair, above the hips)
  and the legs at LOWER_BAND (thighs to shins, above the shoes). The mask is eroded first so that
  background pixels along its edge do not count.
- Skin is excluded with a model in CIELAB (`skin_mask`): skin of every tone, from very light to
  very dark, has a warm hue angle (about 15-85 degrees) and a moderate chroma, with lightness
  anywhere from deep shadow to highlight. Every pixel the model calls skin is dropped before
  any colour is counted, so a bare arm or face never gives a colour. Garments of skin-like
  colours (tan, beige, dull brown) are dropped with them: we lose those, never say skin.
- A region gets a garment colour only when enough of its pixels are not skin (a shirtless
  torso gets none) and most of those agree on one basic colour name, or one hue stands alone
  among neutrals (green and white stripes are a green top); brown is never a garment
  colour (the colour of skin and hair in shade), and the dark names need a low skin share too
  (dark skin in shadow and black cloth are alike).
- Outfit tone: where no hue is sure, people still say "the one in dark clothes" / "in light
  clothes". `tone_hist` ("dark:share,light:share") gives the share of the outfit's non-skin
  pixels that are dark (CIELAB L < TONE_DARK_L) or light and near neutral (L > TONE_LIGHT_L,
  chroma <= TONE_LIGHT_CHROMA), lightness read against the picture's white (a viewer adapts
  to a dim hall), over the garment bands (or the body below the head); it is
  computed for every person, small ones too (what a distractor may be read as wearing).
  `outfit_tone` is decided (dark | light) for a figure whose head is in the frame when nearly
  all of it is that tone and little of it is skin (dark skin in shade is not dark clothes; a
  bare arm is not an outfit).
- Colours are read from the picture as a viewer sees it (`balanced`): a lamplight cast partly
  taken out, so white under lamplight is white (and not skin).
- Every person also gets a histogram of colour names per region (`upper_hist` / `lower_hist`,
  "name:share,..."), from the band when the figure allows it and from the whole mask below
  the head otherwise: that is what a distractor *may* be read as wearing (margins).

Posture is said only where the mask decides it, conservatively:
- lying: a wide, low mask (width >= LYING_ASPECT x height), not cut at the sides;
- sitting: the mask overlaps a seat (chair, couch, bench, toilet) in its lower half, its
  bottom ends within the seat, and it is not tall and thin;
- standing: a whole, tall figure (height >= STANDING_ASPECT x width) that ends in legs (not a
  torso cut off by an unannotated counter), its feet not hidden by another mask, not on a seat
  or a mount (a rider sits).
`posture_maybe` lists the postures a viewer might still read (all three when nothing is decided),
for the margin rule.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from engine.scene.colors import COLOR_NAMES, classify

PERSON_SUPERCATEGORIES = ("person",)
SEATS = ("chair", "couch", "bench", "toilet", "sofa", "stool")
MOUNTS = ("bicycle", "motorcycle", "horse", "elephant", "cow")
POSTURES = ("standing", "sitting", "lying")

UPPER_BAND = (0.24, 0.48)   # torso: share of the whole figure's height, from its top
LOWER_BAND = (0.58, 0.86)   # legs
SEATED_UPPER_BAND = (0.25, 0.5)  # torso of a seated figure (head, torso, then thighs and shins)
TORSO_SHOULDER = 0.75      # a figure cut by the frame: its shoulders are this share of its body width
MIN_FIGURE_PX = 80          # mask height (pixels) below which no garment is read
MIN_REGION_PX = 150         # non-skin pixels a region needs for a garment colour
MIN_NONSKIN = 0.55          # share of a region's pixels that must not be skin
MIN_SHARE = 0.5             # the garment's colour name alone ...
AGREE = 0.72                # share of the non-skin pixels that must have the garment's colour name
DARK_MAX_SKIN = 0.2         # black / gray garments: at most this share of the region may be skin
SHADES = {"white": ("gray",), "black": ("gray",), "gray": ()}   # names a colour takes in shade (others: black)
BLACK_MAX_L = 20.0          # a black garment: its black-named pixels average at most this CIELAB lightness
HEAD_NARROWER = 0.7         # a head is at most this share of the body's width
HEAD_ROWS = 0.15            # the head: this top share of a figure's height
MIN_FACE_SKIN = 0.15        # a black top needs this share of skin in the head rows: from behind, hair covers the back
LEGS_NARROWER = 0.85        # a whole figure: its lowest rows are narrower than its torso ...
LEGS_APART = 0.4            # ... or this share of them show two legs
TONE_DARK_L = 25.0         # CIELAB lightness below which cloth reads dark (black, navy, charcoal)
TONE_LIGHT_L = 70.0        # ... above which it reads light (white, cream, light gray) ...
TONE_LIGHT_CHROMA = 25.0   # ... when near neutral (bright yellow is not "light clothes")
TONE_SURE = {"dark": 0.8, "light": 0.7}   # share of the outfit's non-skin pixels a decided tone needs
CAST_TOP = 0.02            # the brightest share of the picture read for a light cast ...
CAST_CHROMA = (8.0, 60.0)  # ... corrected when its chroma is in this range ...
CAST_GAINS = (0.4, 3.0)    # ... with per-channel gains at most this far from 1
CAST_HUES = ((55.0, 100.0), (235.0, 290.0))   # ... and its hue that of a light (lamp yellow-orange, shade blue)
CAST_ADAPT = 0.6          # ... and only this part of the way (as an exponent of the gains)
WHITE_PERCENTILE = 99      # the picture's white: this percentile of its lightness ...
MIN_WHITE = 50.0           # ... at least this (a night shot is dark, not a grey day)
TONE_MAX_SKIN = 0.2        # share of the outfit region that may be skin for a decided tone
NEUTRALS = ("black", "white", "gray")
HUE_SHARE = 0.4            # a hue among neutrals (stripes, a jacket over a white shirt): this share of the region ...
HUE_RIVAL = 0.35           # ... and no other hue above this share of it
GARMENT_COLORS = tuple(c for c in COLOR_NAMES if c != "brown")
HIST_MIN = 0.05             # histogram entries below this share are left out
STANDING_ASPECT = 2.3       # height / width of a whole standing figure
UPRIGHT_ASPECT = 1.8        # height / width of a whole upright figure whose posture is not decided
TORSO_MIN_START = 0.15      # a torso band found from the width profile starts at least this far down
NOT_SITTING_ASPECT = 2.8    # a figure this tall and unsupported is surely not sitting
NOT_LYING_ASPECT = 1.3      # ... this tall is surely not lying
LYING_ASPECT = 1.8          # width / height of a lying figure
NOT_STANDING_WIDE = 1.2     # width / height at which a figure is surely not standing
OCCLUDER_MAX_AREA = 5.0     # a mask this many times the person's area is ground or backdrop, not an occluder
HIPS = 0.6                  # a seated figure's hips: this share of its height from the top
FEET_HIDDEN = 0.15          # share of the figure's lowest rows covered by another mask: feet may be hidden


# ---- colour space ---------------------------------------------------------------------------

def _linear(x: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> linear light."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


_LINEAR_8BIT = _linear(np.arange(256) / 255.0)   # the same values for each 8-bit level, looked up


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 sRGB -> (N, 3) CIELAB (D65)."""
    arr = np.asarray(rgb).reshape(-1, 3)
    lin = _LINEAR_8BIT[arr] if arr.dtype == np.uint8 else _linear(arr.astype(np.float64) / 255.0)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    L = 116 * f[:, 1] - 16
    a = 500 * (f[:, 0] - f[:, 1])
    b = 200 * (f[:, 1] - f[:, 2])
    return np.stack([L, a, b], axis=1)


_SKIN_MEMO: np.ndarray | None = None


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 -> (N,) bool: pixels that may be skin (`_skin`), each 24-bit colour's answer
    remembered for this process in a 16 MB table, as engine.scene.colors.classify_memo does:
    photos repeat colours. Same answers as `_skin`."""
    global _SKIN_MEMO
    arr = np.asarray(rgb).reshape(-1, 3)
    if arr.dtype != np.uint8:
        return _skin(arr)
    if _SKIN_MEMO is None:
        _SKIN_MEMO = np.full(1 << 24, -1, dtype=np.int8)
    packed = (arr[:, 0].astype(np.int32) << 16) | (arr[:, 1].astype(np.int32) << 8) | arr[:, 2]
    out = _SKIN_MEMO[packed]
    unseen = out < 0
    if unseen.any():
        new = np.unique(packed[unseen])
        _SKIN_MEMO[new] = _skin(np.stack([new >> 16, (new >> 8) & 255, new & 255], axis=1).astype(np.uint8))
        out = _SKIN_MEMO[packed]
    return out.astype(bool)


def _skin(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 -> (N,) bool: pixels that may be skin, of any tone.

    Warm hue (15-85 degrees in the a*b* plane), chroma between a floor that rises with
    lightness (light skin is pale, very dark skin nearly neutral) and a ceiling below saturated
    reds and oranges. Deliberately wide: a pixel wrongly called skin costs a garment colour, a
    skin pixel missed could give one."""
    lab = rgb_to_lab(rgb)
    L, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a))
    floor = np.where(L < 30, 3.0, 4.0)
    skin = (hue >= 15) & (hue <= 85) & (chroma >= floor) & (chroma <= 55) & (L >= 5) & (L <= 95)
    # highlights on light skin are nearly white but still warm: never let them read as a white garment
    highlight = (L > 90) & (b > 5) & (hue >= 15) & (hue <= 110)
    return skin | highlight


# ---- regions --------------------------------------------------------------------------------

def _band(crop: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The crop's mask restricted to rows [lo, hi) of its height, eroded along its edge."""
    h, w = crop.shape
    r0, r1 = int(round(lo * h)), int(round(hi * h))
    band = np.zeros_like(crop)
    band[r0:r1] = crop[r0:r1]
    k = max(1, int(round(0.04 * min(h, w))))
    return ndimage.binary_erosion(band, iterations=k)


def _torso_rows(crop: np.ndarray) -> tuple[float, float] | None:
    """For a figure cut by the frame below its head: the torso band from the mask's width
    profile. The shoulders are the first row as wide as TORSO_SHOULDER of the body's (median
    lower-half) width; the torso spans about one body width below them."""
    h, w = crop.shape
    widths = crop.sum(axis=1).astype(float)
    body = float(np.median(widths[h // 2:]))
    if body < 20:
        return None
    rows = np.flatnonzero(widths >= TORSO_SHOULDER * body)
    if len(rows) == 0 or rows[0] < 0.08 * body:
        return None          # no head above the shoulders: the head itself may be cut
    if float(np.median(widths[:rows[0]])) > HEAD_NARROWER * body:
        return None          # no head narrower than the body above it: the band may be hair or a hood
    r0, r1 = rows[0] + 0.15 * body, rows[0] + 0.9 * body
    if r0 < TORSO_MIN_START * h:
        return None          # "shoulders" this high are a head as wide as legs: a whole figure, not a bust
    if r1 > h:
        return None          # not enough torso visible
    return r0 / h, r1 / h


def _hist(names: np.ndarray) -> dict[str, float]:
    if len(names) == 0:
        return {}
    counts = np.bincount(names, minlength=len(COLOR_NAMES)) / len(names)
    return {COLOR_NAMES[i]: float(s) for i, s in enumerate(counts) if s >= HIST_MIN}


def hist_str(h: dict[str, float]) -> str:
    return ",".join(f"{k}:{v:.2f}" for k, v in sorted(h.items(), key=lambda kv: -kv[1]))


def parse_hist(s: str | None) -> dict[str, float]:
    if not s:
        return {}
    return {k: float(v) for k, v in (p.split(":") for p in s.split(","))}


def region_color(pixels: np.ndarray) -> tuple[str, float, dict[str, float]]:
    """(garment colour or "", its share of the non-skin pixels, histogram of non-skin colour names)."""
    if len(pixels) == 0:
        return "", 0.0, {}
    skin = skin_mask(pixels)
    rest = pixels[~skin]
    names = classify(rest) if len(rest) else np.zeros(0, dtype=np.int8)
    hist = _hist(names)
    if len(rest) < MIN_REGION_PX or len(rest) < MIN_NONSKIN * len(pixels):
        return "", 0.0, hist
    counts = np.bincount(names, minlength=len(COLOR_NAMES)) / len(names)
    best = int(counts.argmax())
    name = COLOR_NAMES[best]
    share = float(counts[best])
    # folds and shade: a white shirt reads partly gray, a red one partly black
    shaded = share + sum(float(counts[COLOR_NAMES.index(n)]) for n in SHADES.get(name, ("black",)))
    skin_share = float(skin.mean())
    if name == "black" and float(rgb_to_lab(rest[names == best])[:, 0].mean()) > BLACK_MAX_L:
        return "", share, hist        # dark olive or navy in shade is not a black top
    if share < MIN_SHARE or shaded < AGREE or name not in GARMENT_COLORS or (name in ("black", "gray") and skin_share > DARK_MAX_SKIN):
        hue = _dominant_hue(counts)
        if hue:        # a green-and-white striped top, a red jacket over a white shirt: the one hue seen
            return hue, float(counts[COLOR_NAMES.index(hue)]), hist
        return "", share, hist
    return name, share, hist


def _dominant_hue(counts: np.ndarray) -> str:
    """The one hue of a region whose other pixels are neutral (white, gray, black): at least
    HUE_SHARE of it, and every other hue at most HUE_RIVAL of it. Brown (skin and hair in
    shade) and the neutral names themselves never qualify."""
    shares = {n: float(counts[i]) for i, n in enumerate(COLOR_NAMES)}
    hues = {n: v for n, v in shares.items() if n not in NEUTRALS}
    best = max(hues, key=hues.get)
    rivals = [v for n, v in hues.items() if n != best]
    if best in GARMENT_COLORS and hues[best] >= HUE_SHARE and all(v <= HUE_RIVAL * hues[best] for v in rivals):
        return best
    return ""


def balanced(rgb: np.ndarray) -> np.ndarray:
    """The picture with a warm or cool light cast taken out, as a viewer's eye does (white
    stripes under lamplight are white, not yellow; warm-lit white is not skin). The cast is
    read from the brightest CAST_TOP share of the pixels: where their colour has a moderate
    chroma (CAST_CHROMA) it is light on white walls and cloth and is scaled to neutral, per
    channel in linear light; a vivid bright colour (a yellow wall in daylight, beyond the range)
    or a near-neutral white is left alone, and so is a cast of a hue no light has (a green
    lawn, no white in sight)."""
    px = rgb.reshape(-1, 3)
    sample = px[:: max(1, len(px) // 20000)]
    if len(sample) == 0:
        return rgb
    lab = rgb_to_lab(sample)
    top = lab[:, 0] >= np.percentile(lab[:, 0], 100 * (1 - CAST_TOP))
    a, b = float(lab[top, 1].mean()), float(lab[top, 2].mean())
    chroma, hue = float(np.hypot(a, b)), float(np.degrees(np.arctan2(b, a))) % 360
    lamp = any(lo <= hue <= hi for lo, hi in CAST_HUES)
    x = sample[top].astype(np.float64) / 255.0
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).mean(axis=0)
    gains = np.ones(3)
    if lamp and CAST_CHROMA[0] <= chroma <= CAST_CHROMA[1]:
        # partly, as the eye adapts: lamplight on a white wall stays a little warm
        gains = np.clip((lin.mean() / np.maximum(lin, 1e-6)) ** CAST_ADAPT, *CAST_GAINS)
    if np.allclose(gains, 1.0, atol=0.02):
        return rgb
    table = np.arange(256) / 255.0
    table = np.where(table <= 0.04045, table / 12.92, ((table + 0.055) / 1.055) ** 2.4)
    out = np.empty_like(rgb)
    for c in range(3):
        v = np.clip(table * gains[c], 0, 1)
        v = np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)
        out[..., c] = np.round(255 * v).astype(np.uint8)[rgb[..., c]]
    return out


def white_point(rgb: np.ndarray) -> float:
    """The picture's white: the WHITE_PERCENTILE lightness of its pixels (a sample), at least
    MIN_WHITE. A viewer judges light and dark against it: in a dim hall a cream top is not dark."""
    px = rgb.reshape(-1, 3)
    px = px[:: max(1, len(px) // 20000)]
    return float(max(MIN_WHITE, np.percentile(rgb_to_lab(px)[:, 0], WHITE_PERCENTILE))) if len(px) else 100.0


def tone_shares(pixels: np.ndarray, white: float = 100.0) -> tuple[dict[str, float], float, int]:
    """({"dark": share, "light": share} of the non-skin pixels, skin share, non-skin count);
    lightness is read against the picture's white (`white_point`)."""
    if len(pixels) == 0:
        return {}, 0.0, 0
    skin = skin_mask(pixels)
    rest = pixels[~skin]
    if len(rest) == 0:
        return {}, float(skin.mean()), 0
    lab = rgb_to_lab(rest)
    L = np.minimum(100.0, lab[:, 0] * 100.0 / min(100.0, max(white, MIN_WHITE)))
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    dark = float((L < TONE_DARK_L).mean())
    light = float(((L > TONE_LIGHT_L) & (chroma <= TONE_LIGHT_CHROMA)).mean())
    return {"dark": dark, "light": light}, float(skin.mean()), len(rest)


def outfit_tone(pixels: np.ndarray, white: float = 100.0) -> tuple[str, dict[str, float]]:
    """(decided tone or "", tone shares) of an outfit region's pixels (see the module docstring)."""
    shares, skin, n = tone_shares(pixels, white)
    if n < MIN_REGION_PX or skin > TONE_MAX_SKIN:
        return "", shares
    for tone, need in TONE_SURE.items():
        if shares.get(tone, 0.0) >= need:
            return tone, shares
    return "", shares


# ---- per person -----------------------------------------------------------------------------

def is_person(row: dict) -> bool:
    return row.get("supercategory") in PERSON_SUPERCATEGORIES or row.get("category") == "person"


def _covered_rows(item, others, lo: float) -> float:
    """Share of the item's box rows from `lo` of its height down that other masks cover."""
    x0, y0, x1, y1 = item.px
    r0 = y0 + int(lo * (y1 - y0))
    covered = np.zeros((y1 - r0, x1 - x0), dtype=bool)
    for o in others:
        ox0, oy0, ox1, oy1 = o.px
        ax0, ay0, ax1, ay1 = max(x0, ox0), max(r0, oy0), min(x1, ox1), min(y1, oy1)
        if ax0 >= ax1 or ay0 >= ay1:
            continue
        covered[ay0 - r0:ay1 - r0, ax0 - x0:ax1 - x0] |= o.crop[ay0 - oy0:ay1 - oy0, ax0 - ox0:ax1 - ox0]
    return float(covered.mean()) if covered.size else 0.0


def _on_seat(item, seats) -> bool:
    """The person's lower half overlaps or touches a seat's mask, and the seat's top is at the
    person's hip height (someone standing behind a chair has hips well above its seat)."""
    x0, y0, x1, y1 = item.px
    mid = y0 + (y1 - y0) // 2
    for s in seats:
        sx0, sy0, sx1, sy1 = s.px
        hips = y0 + HIPS * (y1 - y0)
        if not (sy0 - 0.2 * (y1 - y0) <= hips <= sy1 and y0 < sy0):
            continue      # a seat's top at hip height, the person rising above it
        ax0, ay0, ax1, ay1 = max(x0, sx0), max(mid, sy0), min(x1, sx1), min(y1, sy1)
        if ax0 >= ax1 or ay0 >= ay1:
            continue
        inter = item.crop[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0] & s.crop[ay0 - sy0:ay1 - sy0, ax0 - sx0:ax1 - sx0]
        touch = ndimage.binary_dilation(s.crop[ay0 - sy0:ay1 - sy0, ax0 - sx0:ax1 - sx0], iterations=3) & \
            item.crop[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0]
        if inter.sum() + touch.sum() >= 0.05 * item.crop[mid - y0:].sum():
            return True
    return False


def posture(item, sides: tuple[bool, bool, bool, bool], seats, mounts, others) -> tuple[str, str]:
    """(decided posture or "", comma list of postures a viewer might read)."""
    left, right, top, bottom = sides
    x0, y0, x1, y1 = item.px
    h, w = y1 - y0, x1 - x0
    whole = not (top or bottom)
    tall = h / max(w, 1)
    wide = w / max(h, 1)
    if h < MIN_FIGURE_PX and w < MIN_FIGURE_PX:
        return "", ",".join(POSTURES)
    seated = _on_seat(item, seats)
    mounted = any(_overlaps(item, m) for m in mounts)
    if whole and not (left or right) and wide >= LYING_ASPECT and not seated:
        return "lying", "lying"
    if seated and tall < STANDING_ASPECT and not mounted:
        return "sitting", "sitting"
    maybe = set(POSTURES)
    if whole and tall >= NOT_LYING_ASPECT:
        maybe.discard("lying")
    if wide >= NOT_STANDING_WIDE:
        maybe.discard("standing")
    if whole and tall >= NOT_SITTING_ASPECT and not seated and not mounted:
        maybe.discard("sitting")
    if whole and tall >= STANDING_ASPECT and not seated and not mounted and _has_legs(item.crop) and \
            _covered_rows(item, others, 0.8) < FEET_HIDDEN:
        return "standing", "standing"
    return "", ",".join(p for p in POSTURES if p in maybe)


def _contains(outer, inner) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def _has_legs(crop: np.ndarray) -> bool:
    """The mask ends in legs, not in a torso cut off by something unannotated (a counter): its
    lowest rows are narrower than its torso band, or show two legs apart."""
    h = crop.shape[0]
    widths = crop.sum(axis=1).astype(float)
    band = widths[int(UPPER_BAND[0] * h):int(UPPER_BAND[1] * h)]
    torso = float(np.median(band)) if len(band) else 0.0
    low = crop[int(0.7 * h):]
    if torso <= 0 or len(low) == 0:
        return False
    runs = (np.diff(np.pad(low.astype(np.int8), ((0, 0), (1, 1))), axis=1) == 1).sum(axis=1)
    return float(np.median(widths[int(0.7 * h):])) <= LEGS_NARROWER * torso or float((runs >= 2).mean()) >= LEGS_APART


def _overlaps(a, b) -> bool:
    x0, y0 = max(a.px[0], b.px[0]), max(a.px[1], b.px[1])
    x1, y1 = min(a.px[2], b.px[2]), min(a.px[3], b.px[3])
    if x0 >= x1 or y0 >= y1:
        return False
    return bool((a.crop[y0 - a.px[1]:y1 - a.px[1], x0 - a.px[0]:x1 - a.px[0]]
                 & b.crop[y0 - b.px[1]:y1 - b.px[1], x0 - b.px[0]:x1 - b.px[0]]).any())


def _upright(crop: np.ndarray) -> bool:
    """A whole figure, tall and ending in legs, posture undecided (feet hidden, a little short
    for STANDING_ASPECT, on a seat nobody marked): torso and legs lie where a standing
    figure's do (seated and seen from the front too: torso, then lap and shins)."""
    h, w = crop.shape
    return h / max(w, 1) >= UPRIGHT_ASPECT and _has_legs(crop)


def garments(item, rgb_crop: np.ndarray, sides, decided_posture: str, white: float = 100.0) -> dict:
    """upper_/lower_ colour, share and histogram for one person (see the module docstring)."""
    left, right, top, bottom = sides
    crop = item.crop
    h, w = crop.shape
    out = {"upper_color": "", "upper_frac": 0.0, "lower_color": "", "lower_frac": 0.0}
    bands = {}
    if h >= MIN_FIGURE_PX and not top:
        tall = h / max(w, 1)
        if not bottom and (decided_posture == "standing" or (not decided_posture and _upright(crop))):
            bands = {"upper": UPPER_BAND, "lower": LOWER_BAND}
        elif not bottom and decided_posture == "sitting":
            bands = {"upper": SEATED_UPPER_BAND}
        else:     # cut by the frame, hidden in part, or seated: the torso below the head's width profile
            torso = _torso_rows(crop)
            if torso is not None:
                bands = {"upper": torso}
    body = _band(crop, 0.25, 1.0)   # below the head: what a distractor may be read as wearing
    fallback = _hist(classify(rgb_crop[body][~skin_mask(rgb_crop[body])])) if body.any() else {}
    head = crop.copy()
    head[int(HEAD_ROWS * h):] = False
    face = float(skin_mask(rgb_crop[head]).mean()) if head.any() else 0.0
    for region in ("upper", "lower"):
        if region in bands:
            m = _band(crop, *bands[region])
            name, share, hist = region_color(rgb_crop[m])
            if region == "upper" and name == "black" and face < MIN_FACE_SKIN:
                name = ""      # seen from behind, long dark hair would read as a black top
            out[f"{region}_color"], out[f"{region}_frac"] = name, share
            out[f"{region}_hist"] = hist_str(hist if hist else fallback)
        else:
            out[f"{region}_hist"] = hist_str(fallback)
    # the outfit's tone: over the garment bands where the figure gives them, else below the head
    outfit = np.zeros_like(crop)
    for region in bands:
        outfit |= _band(crop, *bands[region])
    if not outfit.any():
        outfit = body
    tone, shares = outfit_tone(rgb_crop[outfit], white) if outfit.any() else ("", {})
    if not (h >= MIN_FIGURE_PX and not top):
        tone = ""             # too small to see, or the head cut: what shows may be hair or a sleeve
    if tone == "dark" and face < MIN_FACE_SKIN and "upper" not in bands:
        tone = ""             # from behind with no torso band found, long dark hair may be most of it
    if tone and len(bands) > 1 and any(outfit_tone(rgb_crop[_band(crop, *b)], white)[0] != tone for b in bands.values()):
        tone = ""             # top and trousers each of the tone: black trousers under a striped top are not dark clothes
    out["outfit_tone"], out["tone_hist"] = tone, hist_str({k: v for k, v in shares.items() if v > 0})
    return out


def people_facts(items, rgb: np.ndarray, width: int, height: int, border_px: int) -> dict[str, dict]:
    """instance_id -> people columns for every instance (empty values for non-people).

    `items` are engine.scene.facts decoded instances (row, crop, px)."""
    empty = {"upper_color": "", "upper_frac": 0.0, "lower_color": "", "lower_frac": 0.0,
             "upper_hist": "", "lower_hist": "", "posture": "", "posture_maybe": "",
             "outfit_tone": "", "tone_hist": ""}
    seats = [i for i in items if i.row["category"] in SEATS]
    mounts = [i for i in items if i.row["category"] in MOUNTS]
    out = {}
    if not any(is_person(i.row) for i in items):
        rgb, white = rgb, 100.0
    else:
        rgb = balanced(rgb)
        white = white_point(rgb)
    for it in items:
        if not is_person(it.row) or it.row.get("iscrowd"):
            out[it.id] = dict(empty)
            continue
        x0, y0, x1, y1 = it.px
        sides = (x0 < border_px, x1 > width - border_px, y0 < border_px, y1 > height - border_px)
        # what may hide the feet: an object, not a region the person stands in (grass, floor: far
        # larger masks) nor a crowd region
        others = [o for o in items if o is not it and not _contains(o.px, it.px)
                  and not o.row.get("iscrowd") and o.area <= OCCLUDER_MAX_AREA * it.area]
        p, maybe = posture(it, sides, seats, mounts, others)
        row = garments(it, rgb[y0:y1, x0:x1], sides, p, white)
        row.update(posture=p, posture_maybe=maybe)
        out[it.id] = row
    return out
