package detect

import (
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/levels"
)

// Level returns the level of a record of the file (its lines joined by
// '\n') in a stream with the given labels, or "" when the file's levels
// are not detected (level_field: none). The detection is pkg/levels', the
// same the server applies to pushed lines; the profile adds what it knows
// of the whole file: the user's level_field and the level letter of klog
// and Android logcat lines.
func (p *Profile) Level(stream labels.Labels, record []byte) string {
	if !p.Levels {
		return ""
	}
	return levels.DetectRecord(stream, nil, record, p.LevelHints)
}

// chooseLevels sets the level hints from the settings and the chosen
// timestamp format, and counts the levels of the sample for Explain.
func (p *Profile) chooseLevels(lines [][]byte, s Settings) {
	p.LevelCounts = map[string]int{}
	if s.LevelField == "none" {
		return
	}
	p.Levels = true
	p.LevelField = s.LevelField
	p.LevelHints = levels.Hints{Field: s.LevelField}
	switch p.Format {
	case klogFormat:
		p.LevelHints.Format = levels.Klog
	case monthDayFormat:
		p.LevelHints.Format = levels.Logcat
	}
	for _, l := range lines {
		if isBlank(l) || (p.Mode != ModeSingle && isIndented(l)) {
			continue
		}
		p.LevelCounts[p.Level(nil, l)]++
	}
}

var (
	klogFormat     = FormatByName("klog")
	monthDayFormat = FormatByName("month-day")
)
