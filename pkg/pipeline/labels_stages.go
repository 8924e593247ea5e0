package pipeline

import (
	"bytes"
	"regexp"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// selector is one name of drop or keep, with its matcher when it has one.
type selector struct {
	name string
	h    uint64
	m    *labels.Matcher
}

func newSelectors(ls []logql.LabelSelector) []selector {
	out := make([]selector, len(ls))
	for i, l := range ls {
		name := l.Name
		if l.Matcher != nil {
			name = l.Matcher.Name
		}
		out[i] = selector{name: name, h: nameHash(name), m: l.Matcher}
	}
	return out
}

// dropStage is `| drop a, b="v"`: a bare name is removed; a matcher removes
// its label only when the value matches (a missing label counts as "").
// __error__ and __error_details__ can be dropped like labels.
type dropStage struct{ sels []selector }

func newDropStage(s *logql.DropLabels) stage { return dropStage{newSelectors(s.Labels)} }

func (s dropStage) instance() stageInstance { return s }

func (s dropStage) process(st *entryState, _ int64, line []byte) ([]byte, bool) {
	for _, sel := range s.sels {
		if sel.m != nil {
			v, _ := st.getSpecial(sel.name, sel.h)
			if !sel.m.Matches(v) {
				continue
			}
		}
		st.del(sel.name, sel.h)
	}
	return line, true
}

// keepStage is `| keep a, b="v"`: every label not named is removed, and a
// label named with a matcher stays only when its value matches. The error
// labels always stay, as Loki documents.
type keepStage struct{ sels []selector }

func newKeepStage(s *logql.KeepLabels) stage { return &keepStage{newSelectors(s.Labels)} }

type keepInst struct {
	s    *keepStage
	drop []labels.Label
}

func (s *keepStage) instance() stageInstance { return &keepInst{s: s} }

func (in *keepInst) process(st *entryState, _ int64, line []byte) ([]byte, bool) {
	in.drop = in.drop[:0]
	st.each(func(l labels.Label, _ uint8) {
		if !in.keeps(l) {
			in.drop = append(in.drop, l)
		}
	})
	for _, l := range in.drop {
		st.del(l.Name, nameHash(l.Name))
	}
	return line, true
}

func (in *keepInst) keeps(l labels.Label) bool {
	for _, sel := range in.s.sels {
		if sel.name != l.Name {
			continue
		}
		if sel.m == nil || sel.m.Matches(l.Value) {
			return true
		}
	}
	return false
}

// decolorizeStage strips ANSI escape sequences (colours, cursor movement)
// from the line.
type decolorizeStage struct{}

// ansiSequence matches what Loki's decolorize removes: an ESC or CSI
// introducer, optional intermediate bytes, then either an OSC-style
// payload ended by BEL or numeric parameters and a final byte.
var ansiSequence = regexp.MustCompile("[\x1b\u009b][\\[\\]()#;?]*" +
	"(?:(?:(?:[a-zA-Z0-9]*(?:;[a-zA-Z0-9]*)*)?\x07)" +
	"|(?:(?:[0-9]{1,4}(?:;[0-9]{0,4})*)?[0-9A-PRZcf-ntqry=><~]))")

var csi = []byte("\u009b")

func (decolorizeStage) instance() stageInstance { return decolorizeStage{} }

func (decolorizeStage) process(_ *entryState, _ int64, line []byte) ([]byte, bool) {
	if bytes.IndexByte(line, 0x1b) < 0 && !bytes.Contains(line, csi) {
		return line, true
	}
	return ansiSequence.ReplaceAll(line, nil), true
}
