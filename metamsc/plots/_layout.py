"""Text measurement and wrapping shared by the figures: every column width and every wrapped line
is measured with the renderer that will draw it, so text fits by construction."""

from __future__ import annotations

#: longest title / note a figure accepts (characters); longer text is refused, not drawn
MAX_TITLE = 400
MAX_NOTE = 4000
MAX_LABEL = 300
#: widths are the font's outlines (as SVG and PDF draw them); a raster at a low dpi draws text a
#: up to 6% wider (hinting at 72 dpi), so every measured width gets this margin
_SLACK = 1.07


def check_length(text: str | None, name: str, limit: int) -> None:
    """Refuse absurd text lengths with a one-line error naming the argument."""
    if text is not None and len(text) > limit:
        raise ValueError(f"{name} is {len(text)} characters long; a figure takes at most {limit} "
                         f"(put long text in the caption, not the figure)")


class Measurer:
    """Widths of strings in points, from the font outlines (independent of dpi and backend)."""

    def __init__(self, fig=None):
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import TextToPath

        self._fp = FontProperties
        self._t2p = TextToPath()
        self._cache: dict[tuple, float] = {}

    def width(self, s: str, size: float, bold: bool = False, italic: bool = False) -> float:
        if not s:
            return 0.0
        key = (s, size, bold, italic)
        w = self._cache.get(key)
        if w is None:
            fp = self._fp(size=size, weight="bold" if bold else "normal",
                          style="italic" if italic else "normal")
            lines = s.split("\n")
            w = max(self._t2p.get_text_width_height_descent(line, fp, ismath=False)[0]
                    for line in lines) * _SLACK
            self._cache[key] = w
        return w

    def wrap(self, text: str, width_pt: float, size: float, bold: bool = False,
             italic: bool = False) -> list[str]:
        """Greedy word wrap to ``width_pt`` (a line's width: its words' plus the spaces', so each
        word is measured once); a single word longer than the width is broken."""
        space = self.width("a a", size, bold, italic) - self.width("aa", size, bold, italic)
        lines: list[str] = []
        for para in text.split("\n"):
            cur, cur_w = "", 0.0
            for word in para.split():
                w = self.width(word, size, bold, italic)
                if cur and cur_w + space + w <= width_pt:
                    cur, cur_w = f"{cur} {word}", cur_w + space + w
                    continue
                if cur:
                    lines.append(cur)
                while w > width_pt and len(word) > 1:
                    cut = max(1, int(len(word) * width_pt / w) - 1)
                    while cut > 1 and self.width(word[:cut], size, bold, italic) > width_pt:
                        cut -= 1
                    lines.append(word[:cut])
                    word = word[cut:]
                    w = self.width(word, size, bold, italic)
                cur, cur_w = word, w
            lines.append(cur)
        return lines
