package main

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// chartRow is one row of the time table: a workload on a server.
type chartRow struct {
	Label  string             // e.g. "cold read 1 GiB · minio"
	Times  map[string]float64 // tool name → median seconds; absent if no valid time
	Status map[string]string  // tool name → short reason shown instead of a bar, e.g. "PLAINTEXT", "TIMEOUT", "FAILED", "n/a", "not a no-op"
}

// chartPalette is Okabe–Ito, distinguishable with the common colour-vision
// deficiencies; orange and vermillion are kept apart.
var chartPalette = []color.RGBA{
	{0x00, 0x72, 0xb2, 0xff}, {0xe6, 0x9f, 0x00, 0xff}, {0x00, 0x9e, 0x73, 0xff}, {0xcc, 0x79, 0xa7, 0xff},
	{0xd5, 0x5e, 0x00, 0xff}, {0x56, 0xb4, 0xe9, 0xff}, {0x33, 0x33, 0x33, 0xff}, {0xf0, 0xe4, 0x42, 0xff},
}

// chartFace is basicfont's 7×13 face, which has ASCII only, plus the few
// other glyphs the chart and the table labels use; any other rune shows as
// the replacement glyph.
var chartFace = chartExtendFace()

func chartExtendFace() *basicfont.Face {
	// One bitmap row per byte, bit 5 leftmost; row 11 is the baseline.
	// Kept in rune order: basicfont looks the ranges up in order.
	extra := []struct {
		r    rune
		rows [13]byte
	}{
		{'·', [13]byte{5: 0x04, 6: 0x0e, 7: 0x04}},
		{'×', [13]byte{4: 0x11, 5: 0x0a, 6: 0x04, 7: 0x0a, 8: 0x11}},
		{'÷', [13]byte{3: 0x04, 6: 0x1f, 9: 0x04}},
		{'–', [13]byte{6: 0x3f}},
		{'—', [13]byte{6: 0x3f}},
		{'…', [13]byte{10: 0x2a}},
	}
	base := basicfont.Face7x13
	h := base.Ascent + base.Descent
	n := base.Mask.Bounds().Dy() / h
	mask := image.NewAlpha(image.Rect(0, 0, base.Width, (n+len(extra))*h))
	draw.Draw(mask, base.Mask.Bounds(), base.Mask, image.Point{}, draw.Src)
	ranges := []basicfont.Range{base.Ranges[0]} // ASCII; the replacement glyph goes last
	for i, g := range extra {
		for y, bits := range g.rows {
			for x := 0; x < base.Width; x++ {
				if bits&(1<<(5-x)) != 0 {
					mask.SetAlpha(x, (n+i)*h+y, color.Alpha{A: 0xff})
				}
			}
		}
		ranges = append(ranges, basicfont.Range{Low: g.r, High: g.r + 1, Offset: n + i})
	}
	f := *base
	f.Mask, f.Ranges = mask, append(ranges, base.Ranges[1:]...)
	return &f
}

// chartNum keeps about three significant digits, enough to read a median
// or a ratio off the chart without widening the annotations.
func chartNum(v float64) string {
	switch {
	case v < 0.01:
		return fmt.Sprintf("%.2g", v)
	case v < 0.1:
		return fmt.Sprintf("%.3f", v)
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// chartTime returns a row's usable time for tool: NaN, infinite and
// non-positive values cannot be placed on a log axis.
func chartTime(r chartRow, tool string) (float64, bool) {
	t, ok := r.Times[tool]
	return t, ok && t > 0 && !math.IsInf(t, 0) && !math.IsNaN(t)
}

// writeChart draws a horizontal grouped bar chart as a PNG at path.
// tools is the column order; tools[0] is the reference (ssecfs).
func writeChart(path, title string, tools []string, rows []chartRow) error {
	if len(tools) == 0 {
		return errors.New("chart: no tools")
	}
	const (
		pad, barH, barGap, groupGap = 16, 14, 3, 14
		minWidth, minPlot           = 1200, 420
		arrowW                      = 8
	)
	width := func(s string) int { return font.MeasureString(chartFace, s).Ceil() }
	ref := tools[0]

	// The annotations are built first: their widths set the right margin,
	// and the ratios set the axis range.
	lo, hi := 0.25, 4.0
	notes := make([][]string, len(rows))
	labelW, toolW, noteW := 0, 0, 0
	for _, t := range tools {
		toolW = max(toolW, width(t))
	}
	for i, r := range rows {
		labelW = max(labelW, width(r.Label))
		rt, hasRef := chartTime(r, ref)
		for _, tool := range tools {
			t, ok := chartTime(r, tool)
			s := r.Status[tool]
			switch {
			case ok && hasRef:
				q := t / rt
				// The axis ends on powers of two, with some room so that
				// the extreme bar does not sit exactly on an end.
				lo = min(lo, math.Exp2(math.Floor(math.Log2(q*0.9))))
				hi = max(hi, math.Exp2(math.Ceil(math.Log2(q*1.1))))
				// A status next to a time is kept, as for an rsync that changed
				// files but still ran to its end.
				s = strings.TrimSpace(chartNum(q) + "×  " + chartNum(t) + " s  " + s)
			case ok:
				s = strings.TrimSpace(chartNum(t)+" s  "+s) + "  (no " + ref + " time)"
			case s == "":
				s = "-"
			}
			notes[i] = append(notes[i], s)
			noteW = max(noteW, width(s))
		}
	}
	// A few huge or tiny ratios should not squeeze all other bars.
	lo, hi = max(lo, 1.0/64), min(hi, 64)

	// Columns: label, tool name, plot, annotation. The plot gets what is
	// left of the width, and the image widens rather than drop below minPlot.
	plotL := pad + labelW + 16 + toolW + 8
	W := max(minWidth, plotL+minPlot+arrowW+6+noteW+pad)
	plotR := W - pad - noteW - 6 - arrowW
	groupH := len(tools)*barH + (len(tools)-1)*barGap + groupGap
	plotT := pad + 82
	plotB := plotT + len(rows)*groupH
	H := plotB + 22 + pad
	xOf := func(v float64) int {
		v = min(max(v, lo), hi)
		return plotL + int(math.Round(math.Log(v/lo)/math.Log(hi/lo)*float64(plotR-plotL)))
	}

	img := image.NewRGBA(image.Rect(0, 0, W, H))
	fill := func(r image.Rectangle, c color.Color) {
		draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
	}
	text := func(x, y int, s string, c color.Color) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: chartFace, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	ink, grey, grid := color.RGBA{0x22, 0x22, 0x22, 0xff}, color.RGBA{0x66, 0x66, 0x66, 0xff}, color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	white, band := color.RGBA{0xff, 0xff, 0xff, 0xff}, color.RGBA{0xf3, 0xf4, 0xf6, 0xff}
	fill(img.Bounds(), white)

	// Header: title (bold by overprinting), subtitle, legend.
	text(pad, pad+11, title, ink)
	text(pad+1, pad+11, title, ink)
	text(pad, pad+29, "bar = time ÷ "+ref+" time (log scale); shorter is faster", grey)
	x := pad
	for i, t := range tools {
		fill(image.Rect(x, pad+40, x+12, pad+52), chartPalette[i%len(chartPalette)])
		text(x+17, pad+50, t, ink)
		x += 17 + width(t) + 22
	}

	// Alternate group backgrounds tie each label to its bars across the gap.
	for i := range rows {
		if i%2 == 1 {
			fill(image.Rect(0, plotT+i*groupH, W, plotT+(i+1)*groupH), band)
		}
	}
	// Grid and tick labels, above and below the plot, at powers of two.
	for v := lo; v <= hi*1.001; v *= 2 {
		x := xOf(v)
		fill(image.Rect(x, plotT, x+1, plotB), grid)
		s := fmt.Sprintf("%g×", v)
		if v < 0.125 {
			s = fmt.Sprintf("1/%.0f×", 1/v)
		}
		text(x-width(s)/2, plotT-6, s, grey)
		text(x-width(s)/2, plotB+16, s, grey)
	}
	// The reference line goes under the bars: a bar crossing it is slower.
	x1 := xOf(1)
	fill(image.Rect(x1-1, plotT-2, x1+1, plotB+2), grey)

	for i, r := range rows {
		bg := white
		if i%2 == 1 {
			bg = band
		}
		top := plotT + i*groupH + groupGap/2
		text(pad, top+(groupH-groupGap)/2+5, r.Label, ink)
		rt, hasRef := chartTime(r, ref)
		for j, tool := range tools {
			y := top + j*(barH+barGap)
			c := chartPalette[j%len(chartPalette)]
			text(plotL-8-width(tool), y+11, tool, grey)
			end := plotL + 10 // where the annotation starts
			if t, ok := chartTime(r, tool); ok && hasRef {
				q := t / rt
				end = max(xOf(q), plotL+2)
				fill(image.Rect(plotL, y, end, y+barH), c)
				if q > hi { // clipped: an arrow head says the bar goes on
					for k := 0; k < arrowW; k++ {
						fill(image.Rect(end+k, y+k*barH/(2*arrowW), end+k+1, y+barH-k*barH/(2*arrowW)), c)
					}
					end += arrowW
				}
				end += 5
			} else {
				// No bar: a hollow swatch keeps the tool's colour visible.
				fill(image.Rect(plotL, y+2, plotL+6, y+barH-2), c)
				fill(image.Rect(plotL+1, y+3, plotL+5, y+barH-3), bg)
			}
			// A backing box keeps the text readable over the grid lines.
			s := notes[i][j]
			fill(image.Rect(end-2, y, end+width(s)+2, y+barH), bg)
			text(end, y+11, s, ink)
		}
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
